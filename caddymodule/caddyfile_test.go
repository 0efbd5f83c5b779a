package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestCaddyfileAdapt adapts every testdata/*.caddytest fixture (a Caddyfile,
// a line of dashes, the JSON it must give).
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddytest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, want, ok := strings.Cut(string(data), "----------")
			if !ok {
				t.Fatalf("%s has no ---------- separator", f)
			}
			if !caddytest.CompareAdapt(t, f, strings.TrimSpace(caddyfile)+"\n", "caddyfile", strings.TrimSpace(want)) {
				t.Errorf("%s: adapted JSON differs", f)
			}
		})
	}
}

// TestCaddyfileErrors feeds bad Caddyfiles to the adapter; each error must
// name the offending token and its line.
func TestCaddyfileErrors(t *testing.T) {
	const verifier = "37c33fe6674ce8b6dc95b5a38a51e175:5c96fd09fee39ae6c509604bd322e6a23f9797e8e6be58342648959b6bfd76af:1"
	cases := []struct {
		name, body string // body goes inside `btest { }`, from line 3
		want       string
		line       int // of the offending token
	}{
		{"unknown subdirective", "listen :2000\nlisten_on :2001", "unknown btest subdirective 'listen_on'", 4},
		{"duplicate auth", "auth md5\nauth ecsrp5", "duplicate btest option 'auth'", 4},
		{"duplicate udp_ports", "udp_ports 3000-3100\nudp_ports 4000-4100", "duplicate btest option 'udp_ports'", 4},
		{"duplicate max_sessions", "max_sessions 5\nmax_sessions 6", "duplicate btest option 'max_sessions'", 4},
		{"source prefix too long", "source_prefix_v4 33", "source_prefix_v4: '33' is not a number from 1 to 32", 3},
		{"handshake rate not a number", "max_handshake_rate lots", "max_handshake_rate: 'lots' is not a positive number", 3},
		{"progress timeout zero", "progress_timeout 0s", "progress_timeout: duration '0s' is zero; leave the option out for the default", 3},
		{"duplicate grace_period", "grace_period 5s\n\ngrace_period 6s", "duplicate btest option 'grace_period'", 5},
		{"duplicate user", "user bob a\nuser bob b", "duplicate user 'bob'", 4},
		{"bad range reversed", "udp_ports 3000-2000", `udp_ports: invalid port range "3000-2000": need 1 <= first <= last <= 65279`, 3},
		{"bad range text", "udp_ports lots", `udp_ports: invalid port range "lots": want first-last`, 3},
		{"range over client ports", "udp_ports 65300-65400", `udp_ports: invalid port range "65300-65400"`, 3},
		{"range port zero", "udp_ports 0-10", `udp_ports: invalid port range "0-10"`, 3},
		{"udp_ports two args", "udp_ports 3000 3100", "wrong argument count or unexpected line ending after '3100'", 3},
		{"udp_ports no arg", "udp_ports", "wrong argument count or unexpected line ending after 'udp_ports'", 3},
		{"unknown auth", "auth sha1", "auth: unknown mode 'sha1' (want none, md5 or ecsrp5)", 3},
		{"listen no arg", "listen", "wrong argument count or unexpected line ending after 'listen'", 3},
		{"listen bad address", "listen :2000 127.0.0.1:http", "listen: invalid address '127.0.0.1:http'", 3},
		{"listen udp", "listen udp/:2000", "listen: address 'udp/:2000' is not a TCP address", 3},
		{"listen unix", "listen unix//run/btest.sock", "listen: address 'unix//run/btest.sock' is not a TCP address", 3},
		{"user no name", "user", "wrong argument count or unexpected line ending after 'user'", 3},
		{"user three args", "user bob a b", "wrong argument count or unexpected line ending after 'b'", 3},
		{"user unknown sub", "user bob {\n\tsalt 00\n}", "user 'bob': unknown subdirective 'salt' (want password or verifier)", 4},
		{"user duplicate password", "user bob pw {\n\tpassword pw2\n}", "user 'bob': duplicate option 'password'", 4},
		{"user bad verifier", "user bob {\n\tverifier 00:11:2\n}", "user 'bob': verifier: ecsrp5: verifier salt", 4},
		{"user verifier bad parity", "user bob {\n\tverifier " + verifier[:len(verifier)-1] + "7\n}", "user 'bob': verifier: ecsrp5: verifier parity must be 0 or 1", 4},
		{"max_sessions zero", "max_sessions 0", "max_sessions: '0' is not a positive number", 3},
		{"max_sessions text", "max_sessions many", "max_sessions: 'many' is not a positive number", 3},
		{"max_sessions_per_ip negative", "max_sessions_per_ip -1", "max_sessions_per_ip: '-1' is not a positive number", 3},
		{"max_connections too many", "max_connections 256", "max_connections: '256' is not a number from 1 to 255", 3},
		{"max_duration bad", "max_duration soon", "max_duration: invalid duration 'soon'", 3},
		{"max_duration zero", "max_duration 0s", "max_duration: duration '0s' is zero", 3},
		{"max_tx_rate bad", "max_tx_rate fast", `max_tx_rate: invalid bit rate "fast"`, 3},
		{"allow bad", "allow 10.0.0.0/33", `allow: invalid network "10.0.0.0/33"`, 3},
		{"deny bad", "deny example.com", `deny: invalid network "example.com": want a CIDR prefix or an IP address`, 3},
		{"allow no arg", "allow", "wrong argument count or unexpected line ending after 'allow'", 3},
		{"handshake_timeout negative", "handshake_timeout -1s", "handshake_timeout: duration '-1s' is negative", 3},
		{"grace_period two args", "grace_period 5 s", "wrong argument count or unexpected line ending after 's'", 3},
		// Only listen and user resolve placeholders when the config
		// loads; elsewhere one is named as such, not as a bad value.
		{"placeholder in allow", "allow 10.0.0.0/8 {env.NET}", "allow: '{env.NET}' is a placeholder; only listen and user take them (the Caddyfile's {$NAME} works in every option)", 3},
		{"placeholder in max_sessions", "max_sessions {env.N}", "max_sessions: '{env.N}' is a placeholder; only listen and user take them", 3},
		{"placeholder in udp_ports", "udp_ports {file./etc/ports}", "udp_ports: '{file./etc/ports}' is a placeholder", 3},
		{"placeholder in handshake rate", "max_handshake_rate {env.R}", "max_handshake_rate: '{env.R}' is a placeholder", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := "{\n\tbtest {\n" + indent(tc.body) + "\n\t}\n}\n"
			checkAdaptError(t, in, tc.want, tc.line)
		})
	}
	t.Run("same-line argument", func(t *testing.T) {
		checkAdaptError(t, "{\n\tbtest :2000\n}\n", "wrong argument count or unexpected line ending after ':2000'", 2)
	})
	t.Run("option twice", func(t *testing.T) {
		checkAdaptError(t, "{\n\tbtest {\n\t\tauth none\n\t}\n\tbtest {\n\t\tauth md5\n\t}\n}\n",
			"duplicate global option 'btest': configure the btest app in one block", 5)
	})
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = "\t\t" + l
	}
	return strings.Join(lines, "\n")
}

// checkAdaptError adapts a bad Caddyfile and checks that the error says
// want and points at line.
func checkAdaptError(t *testing.T, caddyfile, want string, line int) {
	t.Helper()
	_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err == nil {
		t.Fatalf("no error adapting\n%s", caddyfile)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q\ndoes not contain %q", err, want)
	}
	if at := fmt.Sprintf(", at Caddyfile:%d", line); !strings.HasSuffix(err.Error(), at) {
		t.Fatalf("error %q\ndoes not end with %q", err, at)
	}
}

// TestExampleAdapts checks that examples/Caddyfile and examples/caddy.json
// are the same config.
func TestExampleAdapts(t *testing.T) {
	cf, err := os.ReadFile("../examples/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../examples/caddy.json")
	if err != nil {
		t.Fatal(err)
	}
	// The filename is what `make run` passes (the file server hides it).
	got, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(cf, map[string]any{"filename": "examples/Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range warnings {
		t.Errorf("warning: %s:%d: %s", w.File, w.Line, w.Message)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "\t"); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("examples/Caddyfile adapts to\n%s\nbut examples/caddy.json is\n%s", pretty.Bytes(), want)
	}
}

// TestDocsExamples keeps the Caddy documentation honest: every complete
// Caddyfile example adapts, and the JSON example's btest app validates.
// It reads the README's "btest inside Caddy" section and the Caddyfile
// the Install section gives for a Caddy installed from a package.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		section           string
		caddyfiles, jsons int // at least
	}{
		{"btest inside Caddy", 2, 1},
		{"Install", 1, 0},
	} {
		caddyfiles, jsons := 0, 0
		for lang, body := range fencedBlocks(t, doc, c.section) {
			switch {
			case lang == "caddy" && !strings.Contains(body, "<"): // not the syntax summary
				caddyfiles++
				if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), nil); err != nil {
					t.Errorf("%s: Caddyfile example %d: %v\n%s", c.section, caddyfiles, err, body)
				}
			case lang == "json" && strings.Contains(body, `"apps"`):
				jsons++
				var cfg struct {
					Apps struct {
						Btest json.RawMessage `json:"btest"`
					} `json:"apps"`
				}
				if err := json.Unmarshal([]byte(body), &cfg); err != nil {
					t.Fatalf("%s: JSON example: %v", c.section, err)
				}
				if err := validate(t, string(cfg.Apps.Btest)); err != nil {
					t.Errorf("%s: JSON example: %v", c.section, err)
				}
			}
		}
		if caddyfiles < c.caddyfiles || jsons < c.jsons {
			t.Errorf("found %d Caddyfile and %d JSON examples in the README's %q section, want at least %d and %d",
				caddyfiles, jsons, c.section, c.caddyfiles, c.jsons)
		}
	}
}

// fencedBlocks yields the language and body of each fenced code block in
// the README's "## section".
func fencedBlocks(t *testing.T, readme []byte, section string) iter.Seq2[string, string] {
	t.Helper()
	i := bytes.Index(readme, []byte("\n## "+section+"\n"))
	if i < 0 {
		t.Fatalf("README.md has no %q section", "## "+section)
	}
	doc := readme[i+1:]
	if j := bytes.Index(doc[3:], []byte("\n## ")); j >= 0 {
		doc = doc[:j+3]
	}
	return func(yield func(string, string) bool) {
		for i, block := range strings.Split(string(doc), "```")[1:] {
			if i%2 == 1 {
				continue // text between two fences
			}
			lang, body, _ := strings.Cut(block, "\n")
			if !yield(lang, body) {
				return
			}
		}
	}
}
