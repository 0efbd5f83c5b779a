package dashboard

import (
	"runtime/debug"
	"sync"

	"github.com/btest-go/btest/core"
)

// Facts describe the server the dashboard watches.
type Facts struct {
	// Version is the btest-go build.
	Version string `json:"version"`
	// Listeners are the addresses clients connect to.
	Listeners []string `json:"listeners"`
	// Auth is "none", "md5" or "ecsrp5"; Users the number of accounts.
	Auth  string `json:"auth"`
	Users int    `json:"users"`
	// Limits are the server's caps.
	Limits Limits `json:"limits"`
	// UDPPorts is the UDP data port range and how many ports are in use.
	UDPPorts UDPPorts `json:"udp_ports"`
}

// Limits are a server's caps.
type Limits struct {
	MaxSessions      int `json:"max_sessions"`
	MaxSessionsPerIP int `json:"max_sessions_per_ip"`
	MaxConnections   int `json:"max_connections"`
	// MaxDurationS is in seconds; 0 means no limit.
	MaxDurationS float64 `json:"max_duration_s"`
	// MaxTxRateBps caps what the server sends per test (0 = no cap).
	MaxTxRateBps uint64 `json:"max_tx_rate_bps"`
	// AllowRules and DenyRules count address filters.
	AllowRules int `json:"allow_rules"`
	DenyRules  int `json:"deny_rules"`
}

// UDPPorts is a UDP data port range and its use.
type UDPPorts struct {
	First int `json:"first"`
	Last  int `json:"last"`
	InUse int `json:"in_use"`
}

// FactsOf turns a server's facts into the dashboard's, with this build's
// version.
func FactsOf(f core.ServerFacts) Facts {
	out := Facts{
		Version:   Version(),
		Listeners: f.Listeners,
		Auth:      f.Auth.String(),
		Users:     f.Users,
		Limits: Limits{
			MaxSessions:      f.MaxSessions,
			MaxSessionsPerIP: f.MaxSessionsPerIP,
			MaxConnections:   f.MaxConnections,
			MaxTxRateBps:     f.MaxTxRate,
			AllowRules:       f.AllowRules,
			DenyRules:        f.DenyRules,
		},
		UDPPorts: UDPPorts{First: f.UDPPortFirst, Last: f.UDPPortLast, InUse: f.UDPPortsInUse},
	}
	if f.MaxDuration > 0 {
		out.Limits.MaxDurationS = f.MaxDuration.Seconds()
	}
	if out.Listeners == nil {
		out.Listeners = []string{}
	}
	return out
}

// Version returns the btest-go module's version from the build info: a
// release tag, or the VCS revision of a development build.
var Version = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if bi.Main.Path != "github.com/btest-go/btest" {
		// Inside another program (Caddy): find our module among the deps.
		v = ""
		for _, d := range bi.Deps {
			if d.Path == "github.com/btest-go/btest" {
				v = d.Version
				if d.Replace != nil {
					v = d.Replace.Version
				}
			}
		}
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		return "devel " + rev[:min(12, len(rev))] + dirty
	}
	if v == "" {
		return "(devel)"
	}
	return v
})
