package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/core/ecsrp5"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("btest", parseGlobalOption)
}

// privateRanges is what the `private_ranges` shortcut of allow and deny
// stands for (as in Caddy's trusted_proxies): loopback and the private
// IPv4 (RFC 1918) and IPv6 (unique local) networks.
var privateRanges = []string{
	"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
	"::1/128", "fc00::/7",
}

// parseGlobalOption sets up the btest app from the `btest` global option of
// a Caddyfile. See App.UnmarshalCaddyfile for the syntax.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		d.Next()
		return nil, d.Errf("duplicate global option 'btest': configure the btest app in one block")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{
		Name:  "btest",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

// UnmarshalCaddyfile sets up the App from Caddyfile tokens. Syntax:
//
//	btest {
//		listen              <addresses...>
//		udp_ports           <first>-<last>|<port>
//		auth                none|md5|ecsrp5
//		user                <name> [<password>] {
//			password <password>
//			verifier <salt hex>:<x_gamma hex>:<parity>
//		}
//		max_sessions        <n>
//		max_sessions_per_ip <n>
//		max_connections     <n>
//		max_duration        <duration>
//		max_tx_rate         <bit rate, e.g. 100M>
//		allow               <cidrs...>|private_ranges
//		deny                <cidrs...>|private_ranges
//		handshake_timeout   <duration>
//		grace_period        <duration>
//		max_handshakes                <n>
//		max_handshakes_per_source     <n>
//		max_handshake_rate            <n per second>|off
//		max_handshake_rate_per_source <n per second>|off
//		source_prefix_v4              <bits>
//		source_prefix_v6              <bits>
//		command_timeout               <duration>
//		progress_timeout              <duration>
//		max_status_rate               <n per second>
//		read_buffer_memory            <bytes>
//	}
//
// listen, user, allow and deny may be repeated and add up; every other
// subdirective may be given once. The addresses of listen and the name,
// password and verifier of user may hold placeholders such as
// {env.BTEST_PASSWORD}, resolved when the config loads (and so kept out
// of the JSON config); in any other option one is an error. The
// Caddyfile's own {$NAME}, replaced when the Caddyfile is adapted, works
// in every option.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		switch opt {
		case "listen", "user", "allow", "deny":
		default:
			if seen[opt] {
				return d.Errf("duplicate btest option '%s'", opt)
			}
		}
		seen[opt] = true
		var err error
		switch opt {
		case "listen":
			err = a.parseListen(d)
		case "udp_ports":
			err = a.parseUDPPorts(d)
		case "auth":
			err = a.parseAuth(d)
		case "user":
			err = a.parseUser(d)
		case "max_sessions":
			err = parsePositive(d, &a.MaxSessions, 0)
		case "max_sessions_per_ip":
			err = parsePositive(d, &a.MaxSessionsPerIP, 0)
		case "max_connections":
			err = parsePositive(d, &a.MaxConnections, 255)
		case "max_duration":
			err = parseDuration(d, &a.MaxDuration, true)
		case "max_tx_rate":
			err = a.parseMaxTxRate(d)
		case "allow":
			err = parseNetworks(d, &a.Allow)
		case "deny":
			err = parseNetworks(d, &a.Deny)
		case "handshake_timeout":
			err = parseDuration(d, &a.HandshakeTimeout, false)
		case "grace_period":
			err = parseDuration(d, &a.GracePeriod, false)
		case "max_handshakes":
			err = parsePositive(d, &a.MaxHandshakes, 0)
		case "max_handshakes_per_source":
			err = parsePositive(d, &a.MaxHandshakesPerSource, 0)
		case "max_handshake_rate":
			err = parseRate(d, &a.MaxHandshakeRate)
		case "max_handshake_rate_per_source":
			err = parseRate(d, &a.MaxHandshakeRatePerSource)
		case "source_prefix_v4":
			err = parsePositive(d, &a.SourcePrefixV4, 32)
		case "source_prefix_v6":
			err = parsePositive(d, &a.SourcePrefixV6, 128)
		case "command_timeout":
			err = parseDuration(d, &a.CommandTimeout, false)
		case "progress_timeout":
			err = parseDuration(d, &a.ProgressTimeout, false)
		case "max_status_rate":
			err = parsePositive(d, &a.MaxStatusRate, 0)
		case "read_buffer_memory":
			var n int
			err = parsePositive(d, &n, 0)
			a.ReadBufferMemory = int64(n)
		default:
			return d.Errf("unknown btest subdirective '%s'", opt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *App) parseListen(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	for _, s := range args {
		if !hasPlaceholder(s) {
			na, err := caddy.ParseNetworkAddressWithDefaults(s, "tcp", DefaultPort)
			if err != nil {
				return d.Errf("listen: invalid address '%s': %v", s, err)
			}
			if !strings.HasPrefix(na.Network, "tcp") {
				return d.Errf("listen: address '%s' is not a TCP address", s)
			}
		}
		a.Listen = append(a.Listen, s)
	}
	return nil
}

func (a *App) parseUDPPorts(d *caddyfile.Dispenser) error {
	s, err := singleArg(d)
	if err != nil {
		return err
	}
	if _, _, err := core.ParsePortRange(s); err != nil {
		return d.Errf("udp_ports: %v", err)
	}
	a.UDPPorts = s
	return nil
}

func (a *App) parseAuth(d *caddyfile.Dispenser) error {
	s, err := singleArg(d)
	if err != nil {
		return err
	}
	m, err := core.ParseAuthMode(s)
	if err != nil || s == "" {
		return d.Errf("auth: unknown mode '%s' (want none, md5 or ecsrp5)", s)
	}
	a.Auth = m.String()
	return nil
}

// parseUser reads `user <name> [<password>]` with an optional block of
// `password` and `verifier`.
func (a *App) parseUser(d *caddyfile.Dispenser) error {
	var u User
	if !d.NextArg() {
		return d.ArgErr()
	}
	u.Name = d.Val()
	if d.NextArg() {
		u.Password = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		var dst *string
		switch sub {
		case "password":
			dst = &u.Password
		case "verifier":
			dst = &u.Verifier
		default:
			return d.Errf("user '%s': unknown subdirective '%s' (want password or verifier)", u.Name, sub)
		}
		if *dst != "" {
			return d.Errf("user '%s': duplicate option '%s'", u.Name, sub)
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		*dst = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		if sub == "verifier" && !hasPlaceholder(u.Verifier) {
			if _, err := ecsrp5.ParseVerifier(u.Verifier); err != nil {
				return d.Errf("user '%s': verifier: %v", u.Name, err)
			}
		}
	}
	for _, o := range a.Users {
		if o.Name == u.Name {
			return d.Errf("duplicate user '%s'", u.Name)
		}
	}
	a.Users = append(a.Users, u)
	return nil
}

func (a *App) parseMaxTxRate(d *caddyfile.Dispenser) error {
	s, err := singleArg(d)
	if err != nil {
		return err
	}
	r, err := core.ParseBitRate(s)
	if err != nil {
		return d.Errf("max_tx_rate: %v", err)
	}
	a.MaxTxRate = r
	return nil
}

// parsePositive reads one integer >= 1 (and <= limit when limit > 0).
func parsePositive(d *caddyfile.Dispenser, dst *int, limit int) error {
	opt := d.Val()
	s, err := singleArg(d)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || limit > 0 && n > limit {
		if limit > 0 {
			return d.Errf("%s: '%s' is not a number from 1 to %d", opt, s, limit)
		}
		return d.Errf("%s: '%s' is not a positive number", opt, s)
	}
	*dst = n
	return nil
}

// parseRate reads a rate limit: a positive number, or `off` for none
// (stored as -1).
func parseRate(d *caddyfile.Dispenser, dst *int) error {
	if d.CountRemainingArgs() == 1 && d.NextArg() {
		if d.Val() == "off" {
			*dst = -1
			return nil
		}
		d.Prev()
	}
	return parsePositive(d, dst, 0)
}

// parseDuration reads one duration; negative ones only when negOK.
func parseDuration(d *caddyfile.Dispenser, dst *caddy.Duration, negOK bool) error {
	opt := d.Val()
	s, err := singleArg(d)
	if err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: invalid duration '%s': %v", opt, s, err)
	}
	if v < 0 && !negOK {
		return d.Errf("%s: duration '%s' is negative", opt, s)
	}
	if v == 0 {
		return d.Errf("%s: duration '%s' is zero; leave the option out for the default", opt, s)
	}
	*dst = caddy.Duration(v)
	return nil
}

// parseNetworks reads CIDR prefixes or addresses; `private_ranges` stands
// for the loopback and private networks.
func parseNetworks(d *caddyfile.Dispenser, dst *[]string) error {
	opt := d.Val()
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	for _, s := range args {
		if err := literal(d, opt, s); err != nil {
			return err
		}
		if s == "private_ranges" {
			*dst = append(*dst, privateRanges...)
			continue
		}
		if _, err := core.ParsePrefix(s); err != nil {
			return d.Errf("%s: %v", opt, err)
		}
		*dst = append(*dst, s)
	}
	return nil
}

// hasPlaceholder reports whether s holds a {placeholder}, resolved only
// when the config loads.
func hasPlaceholder(s string) bool {
	i := strings.IndexByte(s, '{')
	return i >= 0 && strings.IndexByte(s[i:], '}') > 0
}

// Interface guard
var _ caddyfile.Unmarshaler = (*App)(nil)

// singleArg returns the one argument of the current directive; none or
// more than one is an argument error.
// A placeholder, which only listen and user resolve, is an error.
func singleArg(d *caddyfile.Dispenser) (string, error) {
	opt := d.Val()
	if !d.NextArg() {
		return "", d.ArgErr()
	}
	s := d.Val()
	if d.NextArg() {
		return "", d.ArgErr()
	}
	return s, literal(d, opt, s)
}

// literal fails when s, a value of opt, holds a placeholder: only listen
// and user resolve them when the config loads; any other option would
// take the braces for its value and fail on them with a puzzling error.
func literal(d *caddyfile.Dispenser, opt, s string) error {
	if hasPlaceholder(s) {
		return d.Errf("%s: '%s' is a placeholder; only listen and user take them (the Caddyfile's {$NAME} works in every option)", opt, s)
	}
	return nil
}
