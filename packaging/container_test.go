package packaging

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/btest-go/btest/core"
)

// Loopback addresses of the container test (see release_test.go).
const (
	scratchAddr     = "127.0.0.1:23402"
	scratchUDPPorts = "23420-23429"
)

// imageUID is the image's USER: the conventional "nonroot" uid of
// distroless images.
const imageUID = 65532

// finalStage returns the instructions of a Dockerfile's last stage, one
// per line, continuation lines joined.
func finalStage(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var cur string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if cur == "" && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		cur += l
		if strings.HasPrefix(strings.ToUpper(cur), "FROM ") {
			lines = nil
		}
		lines = append(lines, cur)
		cur = ""
	}
	return lines
}

// TestDockerfiles checks what the image promises in both Dockerfiles (the
// repository's multi-stage one and GoReleaser's): an empty base, the
// non-root user, the server's ports, /btest as the entry point and, for the
// repository's, the OCI labels (GoReleaser sets its labels itself).
func TestDockerfiles(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	udp := fmt.Sprintf("%d-%d/udp", core.DefaultUDPPortFirst, core.DefaultUDPPortLast)
	for _, f := range []string{"Dockerfile", "packaging/Dockerfile.goreleaser"} {
		stage := strings.Join(finalStage(t, filepath.Join(root, f)), "\n")
		for _, re := range []string{
			`(?m)^FROM scratch$`,
			fmt.Sprintf(`(?m)^USER %d:%d$`, imageUID, imageUID),
			fmt.Sprintf(`(?m)^EXPOSE %d/tcp %s$`, core.DefaultPort, regexp.QuoteMeta(udp)),
			`(?m)^ENTRYPOINT \["/btest"\]$`,
			`(?m)^COPY .*/btest /btest$`,
		} {
			if !regexp.MustCompile(re).MatchString(stage) {
				t.Errorf("%s: final stage has no line matching %s:\n%s", f, re, stage)
			}
		}
	}
	stage := strings.Join(finalStage(t, filepath.Join(root, "Dockerfile")), "\n")
	for _, l := range []string{"title", "version", "revision", "source", "licenses"} {
		if !strings.Contains(stage, "org.opencontainers.image."+l+"=") {
			t.Errorf("Dockerfile: final stage has no OCI label %s", l)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dockerfile: packaging/Dockerfile.goreleaser", "org.opencontainers.image.version:", "org.opencontainers.image.source:"} {
		if !strings.Contains(string(b), want) {
			t.Errorf(".goreleaser.yaml: no %q in the docker section", want)
		}
	}
}

// TestScratchContainer proves the image's final stage without a container
// daemon: the release's static Linux binary, alone in an empty root
// directory (what FROM scratch gives it: no libc, no /etc, no /proc, no
// /dev), as uid 65532, in its own mount, PID, UTS and IPC namespaces (so
// it is PID 1, as in a container), started with the image's CMD, serves
// TCP and UDP tests to our client outside and stops on SIGTERM.
func TestScratchContainer(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		msg := "chroot and namespaces need root"
		if required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	d := release(t)
	tg := target{goos: "linux", goarch: runtime.GOARCH}
	files, _, err := readArchive(filepath.Join(d.dir, tg.archive(d.meta.Version)))
	if err != nil {
		t.Fatal(err)
	}
	bin := files["btest"]
	if bin == nil {
		t.Fatalf("no btest in %s", tg.archive(d.meta.Version))
	}
	// The image: an empty directory with /btest, as COPY leaves it.
	img := t.TempDir()
	if err := os.Chmod(img, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(img, "btest"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(img)
	if err != nil || len(entries) != 1 {
		t.Fatalf("image root holds %v (%v), want only btest", entries, err)
	}
	// The client runs outside, from its own copy.
	client := filepath.Join(t.TempDir(), "btest")
	if err := os.WriteFile(client, bin, 0o755); err != nil {
		t.Fatal(err)
	}

	// ENTRYPOINT ["/btest"], CMD ["--server"], plus a private address.
	cmd := exec.Command("/btest", "--server", "--listen", scratchAddr, "--udp-ports", scratchUDPPorts)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"} // what docker sets
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     img,
		Credential: &syscall.Credential{Uid: imageUID, Gid: imageUID, Groups: []uint32{}},
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
	}
	srv := startServer(t, cmd, scratchAddr)
	pid := cmd.Process.Pid
	if uid := procUID(t, pid); uid != fmt.Sprint(imageUID) {
		t.Errorf("server runs as uid %s, want %d", uid, imageUID)
	}
	if r, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid)); err != nil || r != img {
		t.Errorf("server root is %q (%v), want %s", r, err, img)
	}

	requireTest(t, client, nil, scratchAddr, "-t", "-r", "-n", "4", "-b", "200M", "-d", "2")
	requireTest(t, client, nil, scratchAddr, "--proto", "udp", "-t", "-r", "-b", "20M", "-d", "2")
	srv.stop(t)
	logs := srv.logs.String()
	checkLogs(t, logs)
	t.Logf("server log:\n%s", logs)
}

// procUID is the real uid of a process, from /proc/PID/status.
func procUID(t *testing.T, pid int) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			return strings.Fields(v)[0]
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return ""
}

// dockerRuns returns the `docker run` commands in text (comment markers
// and backslash continuations removed), each as its words.
func dockerRuns(text string) [][]string {
	var runs [][]string
	var cur string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(l), "#"))
		if cur == "" && !strings.HasPrefix(l, "docker run ") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		runs = append(runs, strings.Fields(cur+l))
		cur = ""
	}
	return runs
}

// TestDockerRunExamples checks the documented `docker run` commands (the
// Dockerfile's and the README's): a file the server is told to read
// (--password-file, --verifier-file) is mounted into the container, which
// has nothing else, and host networking is used.
func TestDockerRunExamples(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	readme, _, _ := installSection(t)
	for name, text := range map[string]string{"Dockerfile": string(b), "README.md": readme} {
		runs := dockerRuns(text)
		if len(runs) == 0 {
			t.Errorf("%s: no docker run example", name)
		}
		for _, w := range runs {
			mounts := map[string]bool{}
			for i := 0; i+1 < len(w); i++ {
				if w[i] == "-v" || w[i] == "--volume" {
					parts := strings.Split(w[i+1], ":")
					if len(parts) >= 2 {
						mounts[parts[1]] = true
					}
				}
			}
			if !slices.Contains(w, "host") || !slices.Contains(w, "--network") {
				t.Errorf("%s: %s: no --network host", name, strings.Join(w, " "))
			}
			for i := 0; i+1 < len(w); i++ {
				if (w[i] == "--password-file" || w[i] == "--verifier-file") && !mounts[w[i+1]] {
					t.Errorf("%s: %s: %s %s is not mounted into the container (-v SRC:%s:ro)", name, strings.Join(w, " "), w[i], w[i+1], w[i+1])
				}
			}
		}
	}
}
