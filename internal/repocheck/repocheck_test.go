package repocheck

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestReferencesResolve fails for every reference in the repository that a
// reader could not follow (see the package doc for the rules).
func TestReferencesResolve(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	r, err := loadRepo(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.files) < 10 {
		t.Fatalf("only %d files scanned under %s: the walk is broken", len(r.files), root)
	}
	for _, f := range r.check() {
		t.Error(f)
	}
}

// TestChecksCatch plants each kind of bad reference in a small in-memory
// repository and requires a finding for it, and none for its good twin,
// so a check that stops working fails here.
func TestChecksCatch(t *testing.T) {
	t.Parallel()
	doc := strings.Join([]string{
		"# Protocol",
		"[ok](#2-status-frames) [bad](#9-nowhere)",
		"## 2. Status frames",
		"### 2.1 Who sends what",
		"```",
		"## 7. Not a heading, inside a fence",
		"[not a link](nowhere.md)",
		"```",
	}, "\n")
	cases := []struct {
		name, file, text string
		want             string // part of the one finding; "" = none
	}{
		{"outside note", "core/a.go", "// see PROTOCOL.md section 4", "PROTOCOL.md"},
		{"outside note twice", "core/a.go", "// PEERS.md and STYLE.md", "PEERS.md"},
		{"note the repo holds", "core/a.go", "// see STYLE.md", ""},
		{"shared dir", "core/a.go", "// a copy of ../shared/testvectors/x.json", "outside the repository"},
		{"shared dir unprefixed", "core/a.go", "// a copy of shared/testvectors/x.json", "outside the repository"},
		{"machine path", "README.md", "Read /work/notes/x first.", "outside the repository"},
		{"missing doc", "core/a.go", "// see docs/missing.md", "docs/missing.md"},
		{"existing doc", "core/a.go", "// see docs/protocol.md", ""},
		{"other repo's doc", "core/a.go", "// as btest-rs/docs/missing.md says", ""},
		{"section ok", "core/a.go", "// (docs/protocol.md, §2 Status frames)", ""},
		{"subsection ok", "core/a.go", "// docs/protocol.md, §2.1 Who sends what.", ""},
		{"section title wrapped", "core/a.go", "// docs/protocol.md, §2.1 Who", ""},
		{"section no title", "core/a.go", "// docs/protocol.md, §2", ""},
		{"second section on line", "core/a.go", "// docs/protocol.md, §2 and §5", "§5"},
		{"section then prose", "core/a.go", "// docs/protocol.md, §2.1 Who sends what: the server", ""},
		{"section colon prose", "core/a.go", "// follow docs/protocol.md, §2: the command is LE", ""},
		{"section range", "core/a.go", "// (docs/protocol.md, §2 Status frames to §2.1 Who sends what)", ""},
		{"section in parentheses wrong", "core/a.go", "// docs/protocol.md (§2.1 Status frames)", "title"},
		{"section missing", "core/a.go", "// docs/protocol.md, §7 Status frames", "§7"},
		{"section title wrong", "core/a.go", "// docs/protocol.md, §2.1 Status frames", "title"},
		{"md link ok", "README.md", "See [the protocol](docs/protocol.md#2-status-frames).", ""},
		{"md link missing file", "README.md", "See [x](docs/gone.md).", "docs/gone.md"},
		{"md link missing anchor", "README.md", "See [x](docs/protocol.md#3-gone).", "#3-gone"},
		{"md link web", "README.md", "See [x](https://example.com/a.md).", ""},
		{"md link in fence", "README.md", "```\n[x](gone.md)\n```", ""},
		{"backquoted path ok", "docs/x.md", "The code is in `core/a.go`.", ""},
		{"backquoted path gone", "docs/x.md", "The code is in `core/udp.go`.", "core/udp.go"},
		{"backquoted foreign path", "docs/x.md", "Uses `github.com/x/y` and `caddy/v2`.", ""},
		{"symbol in file", "docs/x.md", "See `f`, `T.m` and\n`T.Field` in `core/a.go`.", ""},
		{"symbol moved", "docs/x.md", "See `f` and `g` in\n`core/a.go`.", "g is in core/a.go"},
		{"method moved", "docs/x.md", "See `T.gone` in `core/a.go`.", "T.gone"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRepo()
			r.add("docs/protocol.md", doc)
			r.add("STYLE.md", "house style")
			r.add("core/a.go", "package core\n\nfunc f() {}\n\ntype T struct {\n\tField int\n}\n\nfunc (t *T) m() {}")
			r.tops["core"], r.tops["docs"] = true, true
			r.add(c.file, c.text)
			var got []string
			for _, f := range r.check() {
				if f.file == c.file {
					got = append(got, f.String())
				}
			}
			switch {
			case c.want == "" && len(got) > 0:
				t.Errorf("findings for a good reference: %q", got)
			case c.want != "" && len(got) != 1:
				t.Errorf("want one finding naming %q, got %q", c.want, got)
			case c.want != "" && !strings.Contains(got[0], c.want):
				t.Errorf("finding %q does not name %q", got[0], c.want)
			}
		})
	}
	// The planted document's own bad anchor is caught too.
	r := newRepo()
	r.add("docs/protocol.md", doc)
	fs := r.check()
	if len(fs) != 1 || !strings.Contains(fs[0].String(), "#9-nowhere") {
		t.Errorf("want the one bad anchor in the document, got %v", fs)
	}
}

func TestSlug(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"9. Multi-connection TCP: tokens and JOIN": "9-multi-connection-tcp-tokens-and-join",
		"4.3 Speed fields and the 4.29 Gbit/s cap": "43-speed-fields-and-the-429-gbits-cap",
		"The `btest` command":                      "the-btest-command",
		"Telegraf and InfluxDB (`btest-telegraf`)": "telegraf-and-influxdb-btest-telegraf",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// repoRoot walks up from the test's directory to the one holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}

// repo is what the checks see: the text of the files they read, every path
// that exists, and the top-level directories whose backquoted paths are
// checked.
type repo struct {
	files map[string][]string // scanned files by slash path, as lines
	paths map[string]bool     // every file and directory
	bases map[string]bool     // base name of every file
	tops  map[string]bool

	headingsOf map[string][]string // parsed once per document
}

func newRepo() *repo {
	return &repo{files: map[string][]string{}, paths: map[string]bool{}, bases: map[string]bool{}, tops: map[string]bool{}}
}

// add records a file with its text and its parent directories.
func (r *repo) add(name, text string) {
	r.files[name] = strings.Split(text, "\n")
	r.addPath(name)
}

func (r *repo) addPath(name string) {
	r.bases[path.Base(name)] = true
	for p := name; p != "." && p != "/"; p = path.Dir(p) {
		r.paths[p] = true
	}
}

// scanned says which files hold comments or prose worth checking.
func scanned(name string) bool {
	switch path.Base(name) {
	case "Makefile", "Caddyfile":
		return true
	}
	if strings.HasPrefix(name, ".ci/") {
		return true
	}
	switch path.Ext(name) {
	case ".go", ".md", ".sh", ".toml", ".conf", ".yml", ".yaml", ".txt":
		return true
	}
	return false
}

// selfDir is this package: its tests spell out the patterns they look for.
const selfDir = "internal/repocheck"

// loadRepo reads the tree at root, skipping VCS data, build output and
// other hidden directories (except .ci).
func loadRepo(root string) (*repo, error) {
	r := newRepo()
	ignored := gitignoredTops(root)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "node_modules" || strings.HasPrefix(n, ".") && n != ".ci" || ignored[rel] {
				return filepath.SkipDir
			}
			if !strings.Contains(rel, "/") {
				r.tops[rel] = true
			}
			r.addPath(rel)
			return nil
		}
		r.addPath(rel)
		if !scanned(rel) || strings.HasPrefix(rel, selfDir+"/") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r.files[rel] = strings.Split(string(b), "\n")
		return nil
	})
	return r, err
}

// gitignoredTops returns the top-level names .gitignore excludes (bin/ and
// the like): what is in them comes and goes with builds.
func gitignoredTops(root string) map[string]bool {
	m := map[string]bool{}
	f, err := os.Open(filepath.Join(root, ".gitignore"))
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.Trim(strings.TrimSpace(sc.Text()), "/")
		if l != "" && !strings.ContainsAny(l, "*?[!#/") {
			m[l] = true
		}
	}
	return m
}

// finding is one reference that does not resolve.
type finding struct {
	file string
	line int
	msg  string
}

func (f finding) String() string { return fmt.Sprintf("%s:%d: %s", f.file, f.line, f.msg) }

var (
	// outsideNote matches the names of notes kept beside the repository.
	outsideNote = regexp.MustCompile(`\b(PROTOCOL|PEERS|STYLE)\.md\b`)
	// outsidePath matches paths into the shared directory beside the
	// checkout, and absolute paths of the machine the project is built on.
	outsidePath = regexp.MustCompile(`(?:\.\./)+shared\b|(?:^|[^\w./-])shared/(?:protocol|testvectors)\b|(?:^|[^\w./:-])/work/[\w.-]+`)
	// docPath matches docs/NAME.md as a path of this repository (not a
	// path inside another one, like owner/repo/docs/x.md).
	docPath = regexp.MustCompile(`(?:^|[^\w./-])(docs/[\w.-]+\.md)`)
	// sectionRef matches "§8" or "§10.3" and what follows on the line.
	sectionRef = regexp.MustCompile(`§\s*(\d+(?:\.\d+)*)\.?([^§]*)`)
	// mdLink matches an inline Markdown link's target.
	mdLink = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	// quotedPath matches a backquoted path with at least one slash.
	quotedPath = regexp.MustCompile("`([\\w.-]+(?:/[\\w.-]+)+)/?`")
	// heading matches a Markdown ATX heading.
	heading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	// numbered splits "8. Status frames" or "10.3 Finding frames".
	numbered = regexp.MustCompile(`^(\d+(?:\.\d+)*)\.?\s+(.*)$`)
)

// check runs every rule over every scanned file, in a stable order.
func (r *repo) check() []finding {
	var out []finding
	names := make([]string, 0, len(r.files))
	for n := range r.files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		md := path.Ext(name) == ".md"
		fence := false
		for i, line := range r.files[name] {
			reported := map[string]bool{} // one finding per missing target and line
			add := func(target, format string, a ...any) {
				if !reported[target] {
					reported[target] = true
					out = append(out, finding{name, i + 1, fmt.Sprintf(format, a...)})
				}
			}
			if md && strings.HasPrefix(strings.TrimSpace(line), "```") {
				fence = !fence
				continue
			}
			r.checkOutside(line, add)
			r.checkDocs(line, add)
			if md && !fence {
				r.checkLinks(name, line, add)
				r.checkQuotedPaths(line, add)
			}
		}
		if md {
			out = append(out, r.checkSymbols(name)...)
		}
	}
	return out
}

// symbolsIn matches "`A`, `B.c` and `D` in `dir/file.go`" in a paragraph:
// names the document says a Go file defines.
var symbolsIn = regexp.MustCompile("((?:`[A-Za-z_][\\w.]*`(?:,?\\s+and\\s+|,\\s*)?)+)\\s+in\\s+`([\\w./-]+\\.go)`")

// checkSymbols checks, paragraph by paragraph (a citation may wrap), that
// the Go files a document cites define the names it says they do: a file
// split or a function renamed leaves such a sentence wrong.
func (r *repo) checkSymbols(name string) []finding {
	var out []finding
	lines := r.files[name]
	fence := false
	for i := 0; i < len(lines); {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), "```") {
			fence = !fence
		}
		if fence || strings.TrimSpace(lines[i]) == "" || strings.HasPrefix(strings.TrimSpace(lines[i]), "```") {
			i++
			continue
		}
		start := i
		var para []string
		for i < len(lines) && strings.TrimSpace(lines[i]) != "" && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```") {
			para = append(para, strings.TrimSpace(lines[i]))
			i++
		}
		text := strings.Join(para, " ")
		for _, m := range symbolsIn.FindAllStringSubmatch(text, -1) {
			src, ok := r.files[m[2]]
			if !ok {
				continue // a missing file is checkQuotedPaths' finding
			}
			for _, q := range regexp.MustCompile("`([\\w.]+)`").FindAllStringSubmatch(m[1], -1) {
				if !defines(src, q[1]) {
					out = append(out, finding{name, start + 1, fmt.Sprintf("says %s is in %s, which does not define it", q[1], m[2])})
				}
			}
		}
	}
	return out
}

// defines reports whether Go source lines declare sym: a function, type,
// variable or constant, "Type.Method" for a method, or "Type.Field" for a
// field (any indented line starting with the field's name).
func defines(src []string, sym string) bool {
	recv, member, isMember := strings.Cut(sym, ".")
	var pats []*regexp.Regexp
	if isMember {
		pats = append(pats,
			regexp.MustCompile(`^func \(\w+ \*?`+regexp.QuoteMeta(recv)+`(\[[^\]]*\])?\) `+regexp.QuoteMeta(member)+`\b`),
			regexp.MustCompile(`^\s+`+regexp.QuoteMeta(member)+`\b`))
	} else {
		q := regexp.QuoteMeta(sym)
		pats = append(pats,
			regexp.MustCompile(`^(func|type|var|const) `+q+`\b`),
			regexp.MustCompile(`^\t`+q+`\s*(=|[A-Za-z*\[])`))
	}
	for _, l := range src {
		for _, p := range pats {
			if p.MatchString(l) {
				return true
			}
		}
	}
	return false
}

func (r *repo) checkOutside(line string, add func(target, format string, a ...any)) {
	if !strings.Contains(line, ".md") && !strings.Contains(line, "shared") && !strings.Contains(line, "/work/") {
		return // the regexps cost more than this, and most lines have none
	}
	for _, m := range outsideNote.FindAllString(line, -1) {
		if !r.bases[m] {
			add(m, "cites %s, which the repository does not contain; cite docs/ instead", m)
		}
	}
	for _, m := range outsidePath.FindAllString(line, -1) {
		m = strings.TrimLeft(m, " \t(\"'`")
		if strings.HasPrefix(m, "/") || !r.paths["shared"] {
			add(m, "cites %s, outside the repository", m)
		}
	}
}

// checkDocs checks docs/NAME.md paths and the sections cited after them.
func (r *repo) checkDocs(line string, add func(target, format string, a ...any)) {
	if !strings.Contains(line, "docs/") {
		return
	}
	for _, m := range docPath.FindAllStringSubmatchIndex(line, -1) {
		doc := line[m[2]:m[3]]
		if !r.paths[doc] {
			add(doc, "cites %s, which does not exist", doc)
			continue
		}
		rest := line[m[3]:]
		if next := docPath.FindStringIndex(rest); next != nil {
			rest = rest[:next[0]]
		}
		rest = strings.TrimLeft(rest, ",:( ")
		if !strings.HasPrefix(rest, "§") {
			continue
		}
		sections := r.sections(doc)
		for _, s := range sectionRef.FindAllStringSubmatch(rest, -1) {
			title, ok := sections[s[1]]
			if !ok {
				add(doc+"§"+s[1], "cites %s §%s, which that document does not have", doc, s[1])
				continue
			}
			if cited := citedTitle(s[2]); !titleMatches(cited, title) {
				add(doc+"§"+s[1], "cites %s §%s as %q, but its title is %q", doc, s[1], cited, title)
			}
		}
	}
}

// headings returns the ATX headings of a Markdown file outside code
// fences, read once per file.
func (r *repo) headings(file string) []string {
	if hs, ok := r.headingsOf[file]; ok {
		return hs
	}
	hs := []string{}
	fence := false
	for _, l := range r.files[file] {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fence = !fence
			continue
		}
		if h := heading.FindStringSubmatch(l); h != nil && !fence {
			hs = append(hs, h[1])
		}
	}
	if r.headingsOf == nil {
		r.headingsOf = map[string][]string{}
	}
	r.headingsOf[file] = hs
	return hs
}

// sections maps the numbers of a document's numbered headings to their
// titles.
func (r *repo) sections(doc string) map[string]string {
	m := map[string]string{}
	for _, h := range r.headings(doc) {
		if n := numbered.FindStringSubmatch(h); n != nil {
			m[n[1]] = n[2]
		}
	}
	return m
}

// citedTitle is the text after a section number, up to where a sentence
// or a parenthesis goes on; "" when a colon follows the number at once
// ("§8: prose").
func citedTitle(s string) string {
	if strings.HasPrefix(strings.TrimSpace(s), ":") {
		return ""
	}
	if i := strings.IndexAny(s, ");,\"`"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "*/")), ".")
	return strings.Join(strings.Fields(s), " ")
}

// words lowers s and keeps only its letters and digits, as words.
func words(s string) string {
	return strings.Join(strings.FieldsFunc(strings.ToLower(s), func(c rune) bool {
		return !unicode.IsLetter(c) && !unicode.IsDigit(c)
	}), " ")
}

// titleMatches accepts no title, the title, a title cut by a line break,
// or the title followed by more words ("§12.2 Pacing: rates under ..."),
// comparing words only.
func titleMatches(cited, title string) bool {
	c, t := words(cited), words(title)
	switch first, _, _ := strings.Cut(c, " "); first {
	case "and", "or", "to", "through", "also", "then", "for", "in", "on":
		return true // "§8 and §10": the words are not a title
	}
	return c == "" || c == t || strings.HasPrefix(t, c+" ") || strings.HasPrefix(c, t+" ") ||
		!strings.ContainsFunc(c, unicode.IsLetter)
}

// checkLinks checks relative Markdown links and their anchors.
func (r *repo) checkLinks(name, line string, add func(target, format string, a ...any)) {
	if !strings.Contains(line, "](") {
		return
	}
	for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		file, anchor, _ := strings.Cut(target, "#")
		switch {
		case file == "":
			file = name
		case strings.HasPrefix(file, "/"):
			file = strings.TrimPrefix(file, "/")
		default:
			file = path.Join(path.Dir(name), file)
		}
		if !r.paths[file] {
			add(file, "links to %s, which does not exist", target)
			continue
		}
		if anchor != "" && path.Ext(file) == ".md" && !r.anchors(file)[anchor] {
			add(target, "links to %s, but %s has no heading #%s", target, file, anchor)
		}
	}
}

// anchors returns the heading anchors GitHub makes for a Markdown file;
// a repeated heading gets -1, -2, ... appended.
func (r *repo) anchors(file string) map[string]bool {
	m := map[string]bool{}
	seen := map[string]int{}
	for _, h := range r.headings(file) {
		s := slug(h)
		if n := seen[s]; n > 0 {
			m[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			m[s] = true
		}
		seen[s]++
	}
	return m
}

// slug is GitHub's anchor for a heading: lower case, spaces to hyphens,
// everything but letters, digits, hyphens and underscores dropped.
func slug(h string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(h) {
		switch {
		case c == ' ':
			b.WriteByte('-')
		case c == '-' || c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c):
			b.WriteRune(c)
		}
	}
	return b.String()
}

// checkQuotedPaths checks backquoted paths that start in one of the
// repository's top-level directories, such as `core/wire/wire.go`.
func (r *repo) checkQuotedPaths(line string, add func(target, format string, a ...any)) {
	if !strings.Contains(line, "`") {
		return
	}
	for _, m := range quotedPath.FindAllStringSubmatch(line, -1) {
		p := m[1]
		top, _, _ := strings.Cut(p, "/")
		if r.tops[top] && !r.paths[p] {
			add(p, "names %s, which does not exist", p)
		}
	}
}
