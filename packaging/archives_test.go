package packaging

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// target is one platform of the release, as the archive names it.
type target struct {
	goos, goarch, goarm, gomips string
}

// targets are the platforms the issue asks for; the test holds its own list
// rather than trusting GoReleaser's report of what it built.
var targets = []target{
	{"linux", "amd64", "", ""},
	{"linux", "arm64", "", ""},
	{"linux", "arm", "7", ""},
	{"linux", "mipsle", "", "softfloat"},
	{"linux", "mips", "", "softfloat"},
	{"windows", "amd64", "", ""},
	{"windows", "arm64", "", ""},
	{"darwin", "amd64", "", ""},
	{"darwin", "arm64", "", ""},
	{"freebsd", "amd64", "", ""},
}

func (tg target) String() string {
	s := tg.goos + "_" + tg.goarch
	if tg.goarm != "" {
		s += "v" + tg.goarm
	}
	if tg.gomips != "" {
		s += "_" + tg.gomips
	}
	return s
}

// archive is the file name .goreleaser.yaml's name_template gives.
func (tg target) archive(version string) string {
	ext := ".tar.gz"
	if tg.goos == "windows" {
		ext = ".zip"
	}
	return "btest_" + version + "_" + tg.String() + ext
}

func (tg target) exe(name string) string {
	if tg.goos == "windows" {
		return name + ".exe"
	}
	return name
}

// maxBinarySize is the size target for a stripped btest.
const maxBinarySize = 8 << 20

func TestReleaseArchives(t *testing.T) {
	t.Parallel()
	d := release(t)
	// metadata.json's date is when the release ran; the archives carry
	// the commit's time.
	ct := strings.TrimSpace(run(t, repoRoot(t), time.Minute, "git", "show", "-s", "--format=%cI", d.meta.Commit))
	commitTime, err := time.Parse(time.RFC3339, ct)
	if err != nil {
		t.Fatalf("commit time %q: %v", ct, err)
	}
	t.Logf("release %s from %s (committed %s)", d.meta.Version, d.meta.Commit, ct)
	t.Logf("%-26s %12s %16s", "target", "btest bytes", "telegraf bytes")
	for _, tg := range targets {
		name := tg.archive(d.meta.Version)
		files, times, err := readArchive(filepath.Join(d.dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, want := range []string{"README.md", "LICENSE", "systemd/btest.service", tg.exe("btest"), tg.exe("btest-telegraf")} {
			if _, ok := files[want]; !ok {
				t.Errorf("%s: no %s in the archive", name, want)
			}
		}
		for f, mt := range times {
			// Reproducible: every entry carries the commit time, not the
			// time of the build.
			if !mt.Equal(commitTime) {
				t.Errorf("%s: %s has mtime %s, want the commit time %s", name, f, mt.UTC(), commitTime.UTC())
			}
		}
		for _, bin := range []string{"btest", "btest-telegraf"} {
			if b, ok := files[tg.exe(bin)]; ok {
				if err := checkBinary(tg, b, d.meta.Version, d.meta.Commit); err != nil {
					t.Errorf("%s: %s: %v", name, bin, err)
				}
			}
		}
		sz := len(files[tg.exe("btest")])
		t.Logf("%-26s %12d %16d", tg, sz, len(files[tg.exe("btest-telegraf")]))
		if sz > maxBinarySize {
			t.Errorf("%s: btest is %d bytes, over the %d-byte target", name, sz, maxBinarySize)
		}
	}
}

// readArchive returns the regular files of a .tar.gz or .zip with their
// contents and modification times.
func readArchive(path string) (map[string][]byte, map[string]time.Time, error) {
	files := map[string][]byte{}
	times := map[string]time.Time{}
	if strings.HasSuffix(path, ".zip") {
		zr, err := zip.OpenReader(path)
		if err != nil {
			return nil, nil, err
		}
		defer zr.Close()
		for _, f := range zr.File {
			if f.FileInfo().IsDir() {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return nil, nil, err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return nil, nil, err
			}
			files[f.Name] = b
			times[f.Name] = f.Modified
		}
		return files, times, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	gz, err := gzip.NewReader(fh)
	if err != nil {
		return nil, nil, err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, times, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, err
		}
		files[h.Name] = b
		times[h.Name] = h.ModTime
	}
}

// checkBinary checks an executable's header against its target (machine,
// word size, byte order, OS ABI), that a Linux binary is static (no
// interpreter, no shared libraries), and its embedded build information:
// platform settings, CGO_ENABLED=0, -trimpath, and the version stamped.
func checkBinary(tg target, b []byte, version, commit string) error {
	r := bytes.NewReader(b)
	switch tg.goos {
	case "linux", "freebsd":
		f, err := elf.NewFile(r)
		if err != nil {
			return fmt.Errorf("not ELF: %w", err)
		}
		want := map[string]struct {
			m     elf.Machine
			class elf.Class
			order string
		}{
			"amd64":  {elf.EM_X86_64, elf.ELFCLASS64, "LittleEndian"},
			"arm64":  {elf.EM_AARCH64, elf.ELFCLASS64, "LittleEndian"},
			"arm":    {elf.EM_ARM, elf.ELFCLASS32, "LittleEndian"},
			"mipsle": {elf.EM_MIPS, elf.ELFCLASS32, "LittleEndian"},
			"mips":   {elf.EM_MIPS, elf.ELFCLASS32, "BigEndian"},
		}[tg.goarch]
		if f.Machine != want.m || f.Class != want.class || fmt.Sprint(f.ByteOrder) != want.order {
			return fmt.Errorf("ELF %s %s %s, want %s %s %s", f.Machine, f.Class, f.ByteOrder, want.m, want.class, want.order)
		}
		abi := elf.ELFOSABI_NONE
		if tg.goos == "freebsd" {
			abi = elf.ELFOSABI_FREEBSD
		}
		if f.OSABI != abi {
			return fmt.Errorf("ELF OS ABI %s, want %s", f.OSABI, abi)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return fmt.Errorf("dynamically linked: has an ELF interpreter")
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			return fmt.Errorf("dynamically linked against %v", libs)
		}
		if s := f.Section(".symtab"); s != nil {
			return fmt.Errorf("not stripped: has .symtab")
		}
	case "windows":
		f, err := pe.NewFile(r)
		if err != nil {
			return fmt.Errorf("not PE: %w", err)
		}
		want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64}[tg.goarch]
		if f.Machine != want {
			return fmt.Errorf("PE machine %#x, want %#x", f.Machine, want)
		}
	case "darwin":
		f, err := macho.NewFile(r)
		if err != nil {
			return fmt.Errorf("not Mach-O: %w", err)
		}
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[tg.goarch]
		if f.Cpu != want {
			return fmt.Errorf("Mach-O CPU %s, want %s", f.Cpu, want)
		}
	}
	bi, err := buildinfo.Read(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("build info: %w", err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	want := map[string]string{"GOOS": tg.goos, "GOARCH": tg.goarch, "CGO_ENABLED": "0", "-trimpath": "true"}
	if tg.goarm != "" {
		want["GOARM"] = tg.goarm
	}
	if tg.gomips != "" {
		want["GOMIPS"] = tg.gomips
	}
	for k, v := range want {
		if settings[k] != v {
			return fmt.Errorf("build setting %s=%q, want %q", k, settings[k], v)
		}
	}
	// -trimpath keeps -ldflags out of the build info (go.dev/issue/52372),
	// so look for what -X put into the binary.
	if !bytes.Contains(b, []byte("v"+version)) || !bytes.Contains(b, []byte(commit)) {
		return fmt.Errorf("the version v%s and revision %s are not stamped into the binary", version, commit)
	}
	return nil
}

func TestChecksums(t *testing.T) {
	t.Parallel()
	d := release(t)
	f, err := os.Open(filepath.Join(d.dir, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("checksums.txt: bad line %q", sc.Text())
		}
		b, err := os.ReadFile(filepath.Join(d.dir, name))
		if err != nil {
			t.Errorf("checksums.txt lists %s: %v", name, err)
			continue
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: sha256 %x, checksums.txt says %s", name, got, sum)
		}
		listed[name] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if n := tg.archive(d.meta.Version); !listed[n] {
			t.Errorf("checksums.txt does not list %s", n)
		}
	}
	for _, pkg := range linuxPackages(t, d) {
		if !listed[filepath.Base(pkg)] {
			t.Errorf("checksums.txt does not list %s", filepath.Base(pkg))
		}
	}
}
