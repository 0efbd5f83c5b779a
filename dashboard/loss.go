package dashboard

import "github.com/btest-go/btest/core"

// lossPct is the share of datagrams lost among those that should have
// arrived, in percent.
func lossPct(lost, received uint64) float64 {
	if lost == 0 {
		return 0
	}
	return float64(lost) * 100 / float64(lost+received)
}

// intervalLoss is the loss of the last second of a UDP test.
func intervalLoss(st core.IntervalStats) float64 { return lossPct(st.LostPackets, st.RxPackets) }

// summaryLoss is the loss over a whole UDP test.
func summaryLoss(sum core.Summary) float64 { return lossPct(sum.LostPackets, sum.RxPackets) }

// lossKnown reports whether the server counts a test's loss: only of UDP
// datagrams it receives, so not in a test where it only sends.
func lossKnown(i core.SessionInfo) bool {
	return i.Proto == core.ProtoUDP && i.Direction != core.Receive
}

// known returns pointers to lost and pct when the test's loss is known,
// and nils (null in the JSON) when it is not.
func known(i core.SessionInfo, lost uint64, pct float64) (*uint64, *float64) {
	if !lossKnown(i) {
		return nil, nil
	}
	return &lost, &pct
}
