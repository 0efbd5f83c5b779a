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
