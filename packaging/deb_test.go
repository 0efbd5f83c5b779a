package packaging

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Loopback addresses of the packaged-server test (see release_test.go).
const (
	debAddr     = "127.0.0.1:23401"
	debUDPPorts = "23410-23419"
)

// linuxPackages returns dist's .deb and .rpm files: one of each for every
// Linux target.
func linuxPackages(t *testing.T, d *dist) []string {
	t.Helper()
	var linux int
	for _, tg := range targets {
		if tg.goos == "linux" {
			linux++
		}
	}
	var all []string
	for _, ext := range []string{"deb", "rpm"} {
		m, err := filepath.Glob(filepath.Join(d.dir, "*."+ext))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != linux {
			t.Errorf("%d .%s files in dist/, want %d (one per Linux target): %v", len(m), ext, linux, m)
		}
		all = append(all, m...)
	}
	return all
}

// TestRPMPackages checks each .rpm's lead and that its header lists the
// binary, the unit and the defaults file and holds the postinstall script
// (no rpm tool needed).
func TestRPMPackages(t *testing.T) {
	t.Parallel()
	d := release(t)
	// The %post scriptlet, in the header as text: TestPostinstall runs
	// the same file with rpm's arguments.
	postinst, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "postinstall.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range linuxPackages(t, d) {
		if !strings.HasSuffix(p, ".rpm") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte{0xed, 0xab, 0xee, 0xdb}) {
			t.Errorf("%s: no RPM lead", filepath.Base(p))
			continue
		}
		// The header (uncompressed, before the payload) holds base names
		// and directory names separately.
		for _, s := range []string{"btest.service", "/usr/lib/systemd/system/", "/usr/bin/", "/etc/default/", "MIT"} {
			if !bytes.Contains(b[:min(len(b), 64<<10)], []byte(s)) {
				t.Errorf("%s: header does not mention %q", filepath.Base(p), s)
			}
		}
		if !bytes.Contains(b[:min(len(b), 64<<10)], postinst) {
			t.Errorf("%s: header does not hold packaging/postinstall.sh as the %%post scriptlet", filepath.Base(p))
		}
	}
}

// debArch is Debian's name for the machine's architecture.
func debArch() string {
	switch runtime.GOARCH {
	case "arm":
		return "armhf"
	case "386":
		return "i386"
	}
	return runtime.GOARCH
}

// TestDebPackage unpacks the machine's .deb without installing it and
// checks what it installs: the unit passes systemd-analyze verify and
// rates 2.0 or better in systemd-analyze security, the binary reports the
// release version, and the server, started the way the unit starts it and
// with the password as a systemd credential, serves TCP and UDP tests,
// refuses a wrong password and stops cleanly on SIGTERM.
func TestDebPackage(t *testing.T) {
	t.Parallel()
	dpkgDeb := needTool(t, "dpkg-deb")
	analyze := needTool(t, "systemd-analyze")
	d := release(t)
	var deb string
	for _, p := range linuxPackages(t, d) {
		if strings.HasSuffix(p, "_"+debArch()+".deb") {
			deb = p
		}
	}
	if deb == "" {
		t.Fatalf("no .deb for %s in %s", debArch(), d.dir)
	}
	t.Logf("package %s", filepath.Base(deb))

	fields := run(t, "", time.Minute, dpkgDeb, "-f", deb, "Package", "Architecture", "Version")
	for _, want := range []string{"Package: btest", "Architecture: " + debArch()} {
		if !strings.Contains(fields, want) {
			t.Errorf("control fields %q lack %q", fields, want)
		}
	}
	ctrl := t.TempDir()
	run(t, "", time.Minute, dpkgDeb, "-e", deb, ctrl)
	if b, err := os.ReadFile(filepath.Join(ctrl, "conffiles")); err != nil || !strings.Contains(string(b), "/etc/default/btest") {
		t.Errorf("conffiles %q (%v): want /etc/default/btest kept across upgrades", b, err)
	}
	// The maintainer scripts are ours as written (TestPostinstall runs
	// postinstall.sh; nfpm must not have changed it on the way).
	for s, src := range map[string]string{"postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh"} {
		got, err := os.ReadFile(filepath.Join(ctrl, s))
		if err != nil {
			t.Errorf("maintainer script %s: %v", s, err)
			continue
		}
		want, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", src))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("maintainer script %s differs from packaging/%s", s, src)
		}
	}
	listing := run(t, "", time.Minute, dpkgDeb, "-c", deb)
	for _, re := range []string{
		`-rwxr-xr-x root/root .* \./usr/bin/btest\n`,
		`-rw-r--r-- root/root .* \./usr/lib/systemd/system/btest\.service\n`,
		`-rw-r--r-- root/root .* \./etc/default/btest\n`,
		`drwx------ root/root .* \./etc/btest/\n`,
	} {
		if !regexp.MustCompile(re).MatchString(listing) {
			t.Errorf("package listing has no line matching %q:\n%s", re, listing)
		}
	}

	root := t.TempDir()
	run(t, "", time.Minute, dpkgDeb, "-x", deb, root)

	// The unit as installed: --root makes systemd-analyze resolve
	// /usr/bin/btest inside the unpacked tree; dependencies on targets a
	// bare tree lacks (sysinit.target) are not the unit's errors.
	out := run(t, "", time.Minute, analyze, "verify", "--recursive-errors=no", "--root="+root, "btest.service")
	if strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %s", out)
	}
	sec := run(t, "", time.Minute, analyze, "security", "--offline=yes", "--root="+root, "--threshold=20", "btest.service")
	m := regexp.MustCompile(`Overall exposure level for btest\.service: ([0-9.]+) (\S+)`).FindStringSubmatch(sec)
	if m == nil {
		t.Fatalf("systemd-analyze security: no overall rating in\n%s", sec)
	}
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || v > 2.0 || m[2] != "OK" {
		t.Errorf("systemd-analyze security rates btest.service %s %s, want <= 2.0 OK\n%s", m[1], m[2], sec)
	}
	t.Logf("systemd-analyze security: %s %s", m[1], m[2])

	bin := filepath.Join(root, "usr/bin/btest")
	ver := run(t, "", time.Minute, bin, "--version")
	if !strings.Contains(ver, "v"+d.meta.Version) || !strings.Contains(ver, d.meta.Commit[:12]) {
		t.Errorf("btest --version = %q, want v%s and revision %s", ver, d.meta.Version, d.meta.Commit[:12])
	}
	t.Logf("btest --version: %s", strings.TrimSpace(ver))

	// A mistyped BTEST_ARGS must end with the status the unit does not
	// restart on (RestartPreventExitStatus=), and say what is wrong.
	unitPath := filepath.Join(root, "usr/lib/systemd/system/btest.service")
	noRestart := strings.Join(unitDirectives(t, unitPath)["RestartPreventExitStatus"], " ")
	bad := exec.Command(bin, "--server", "--max-sesions", "20")
	badOut, err := bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || strconv.Itoa(ee.ExitCode()) != noRestart {
		t.Errorf("btest --server with an unknown flag: %v, want exit status %s (RestartPreventExitStatus)\n%s", err, noRestart, badOut)
	} else if !strings.Contains(string(badOut), "max-sesions") {
		t.Errorf("btest --server with an unknown flag does not name it:\n%s", badOut)
	}

	// /etc/default/btest, as an operator edits it: the packaged flags plus
	// a loopback listen address and UDP ports that collide with nothing.
	defFile := filepath.Join(root, "etc/default/btest")
	env := readEnvFile(t, defFile)
	env["BTEST_ARGS"] += " --listen " + debAddr + " --udp-ports " + debUDPPorts
	argv := execStart(t, unitPath, env)
	if argv[0] != "/usr/bin/btest" {
		t.Fatalf("ExecStart runs %s, not the packaged /usr/bin/btest", argv[0])
	}
	argv[0] = bin

	// What LoadCredential=password:/etc/btest/password gives the service:
	// a directory in $CREDENTIALS_DIRECTORY with the file "password",
	// readable by the service's (dynamic) user only.
	const password = "pkg-Secret-7"
	creds := t.TempDir()
	if err := os.WriteFile(filepath.Join(creds, "password"), []byte(password+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "CREDENTIALS_DIRECTORY=" + creds}
	if os.Geteuid() == 0 {
		// DynamicUser=yes: an unprivileged uid from systemd's dynamic range.
		const uid = 61184
		// t.TempDir's parent is private to root: let the user through
		// to the unpacked package and the credentials.
		for _, p := range []string{filepath.Dir(root), filepath.Dir(creds)} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range []string{creds, filepath.Join(creds, "password")} {
			if err := os.Chown(p, uid, uid); err != nil {
				t.Fatal(err)
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	srv := startServer(t, cmd, debAddr)

	user := userFlag(t, env["BTEST_ARGS"])
	clientEnv := []string{"BTEST_PASSWORD=" + password}
	requireTest(t, bin, clientEnv, debAddr, "-a", user, "-t", "-r", "-b", "200M", "-d", "2")
	requireTest(t, bin, clientEnv, debAddr, "-a", user, "--proto", "udp", "-t", "-r", "-b", "20M", "-d", "2")
	if sum, stderr, err := runClient(t, bin, []string{"BTEST_PASSWORD=wrong"}, debAddr, "-a", user, "-d", "1"); err == nil {
		t.Errorf("a wrong password was accepted: %+v", sum)
	} else if !strings.Contains(stderr, "auth") {
		t.Errorf("wrong password: %v, stderr %q: want an authentication error", err, stderr)
	}
	srv.stop(t)
	logs := srv.logs.String()
	checkLogs(t, logs)
	if strings.Contains(logs, password) {
		t.Errorf("the server logged the password:\n%s", logs)
	}
	if !strings.Contains(logs, "v"+d.meta.Version) {
		t.Errorf("the server did not log its version at start:\n%s", logs)
	}
}

// readEnvFile reads a systemd EnvironmentFile of KEY="value" lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, l)
		}
		env[k] = strings.Trim(v, `"`)
	}
	return env
}

// execStart returns the unit's ExecStart= command line with $VAR expanded
// the way systemd does for an unquoted $VAR: split at whitespace.
func execStart(t *testing.T, unit string, env map[string]string) []string {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			if line != "" {
				t.Fatalf("%s: more than one ExecStart=", unit)
			}
			line = v
		}
	}
	var argv []string
	for _, w := range strings.Fields(line) {
		if name, ok := strings.CutPrefix(w, "$"); ok {
			argv = append(argv, strings.Fields(env[name])...)
			continue
		}
		argv = append(argv, w)
	}
	if len(argv) == 0 {
		t.Fatalf("%s: no ExecStart=", unit)
	}
	return argv
}

// userFlag returns the --user value in a flag string.
func userFlag(t *testing.T, args string) string {
	t.Helper()
	f := strings.Fields(args)
	for i, a := range f {
		if (a == "--user" || a == "-a") && i+1 < len(f) {
			return f[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--user="); ok {
			return v
		}
	}
	t.Fatalf("no --user in BTEST_ARGS %q", args)
	return ""
}
