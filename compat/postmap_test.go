package compat

// Differential tests: Debian's postmap and postdove's, run on the same
// files in twin folders; stdout (sorted where Postfix's hash order is
// arbitrary), the shape of stderr and the exit status must agree.

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// postmapStep is one command run in both folders.
type postmapStep struct {
	args  []string // after "-c ."
	stdin string
	sort  bool // compare stdout as a sorted set of lines
}

// postmapCase is a folder of files and the commands run in it.
type postmapCase struct {
	name  string
	files map[string]string
	steps []postmapStep
}

func postmapSetup(t *testing.T, mainCf string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(mainCf), 0644); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(body), 0644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// postmapStdout normalises what may differ between two correct runs: the
// order of a hash table's entries, and postalias's time stamp.
func postmapStdout(s string, sorted bool) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "YP_LAST_MODIFIED") {
			continue
		}
		lines = append(lines, l)
	}
	if sorted {
		sort.Strings(lines)
	}
	return lines
}

// postmapRunCases runs every case with prog ("postmap" or "postalias").
func postmapRunCases(t *testing.T, prog string, cases []postmapCase) {
	o := oracle.Get(t)
	ours := oracle.Postdove(t, prog)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			odir := postmapSetup(t, o.DynamicMapsConfig(), c.files)
			ndir := postmapSetup(t, "", c.files)
			for i, st := range c.steps {
				args := append([]string{"-c", "."}, st.args...)
				ocmd := o.Command(prog, args...)
				ocmd.Dir = odir
				want := oracle.Run(ocmd, st.stdin)
				ncmd := o.Command(prog, args...)
				ncmd.Path, ncmd.Args[0] = ours, ours
				ncmd.Dir = ndir
				got := oracle.Run(ncmd, st.stdin)
				ws, gs := postmapStdout(want.Stdout, st.sort), postmapStdout(got.Stdout, st.sort)
				if !reflect.DeepEqual(ws, gs) {
					t.Errorf("step %d %q: stdout\n got %q\nwant %q", i, st.args, gs, ws)
				}
				we, ge := oracle.StderrShape(want.Stderr), oracle.StderrShape(got.Stderr)
				if !reflect.DeepEqual(we, ge) {
					t.Errorf("step %d %q: stderr\n got %q\nwant %q", i, st.args, ge, we)
				}
				if want.Code != got.Code {
					t.Errorf("step %d %q: exit %d, want %d", i, st.args, got.Code, want.Code)
				}
			}
		})
	}
}

func postmapSteps(args ...[]string) []postmapStep {
	var s []postmapStep
	for _, a := range args {
		s = append(s, postmapStep{args: a, sort: true})
	}
	return s
}

func TestPostmapCompat(t *testing.T) {
	access := "192.168.2.0/24 OK\n192.168.2.10 REJECT\n"
	virtual := "@example.net infonetaccount@example.com\nInfo@Example.COM  john\n"
	messy := "A 1\nb  2 x   \n# comment\n\n  cont  \nnovalue\na 3\n\tcont2\nKey\tTab\r\n" +
		"  # indented comment\nc\x00d v\ne f\x00g\n"
	cases := []postmapCase{
		{"access", map[string]string{"access": access}, postmapSteps(
			[]string{"access"},
			[]string{"-q", "192.168.2.10", "access"},
			[]string{"-q", "192.168.2.11", "access"},
			[]string{"-s", "access"},
			[]string{"-q", "192.168.2.0/24", "hash:access"},
		)},
		{"virtual", map[string]string{"virtual": virtual}, postmapSteps(
			[]string{"hash:virtual"},
			[]string{"-q", "@EXAMPLE.net", "virtual"},
			[]string{"-q", "info@example.com", "virtual"},
			[]string{"-fq", "Info@Example.COM", "virtual"},
			[]string{"-s", "virtual"},
		)},
		{"fold", map[string]string{"t": virtual}, postmapSteps(
			[]string{"-f", "t"},
			[]string{"-q", "Info@Example.COM", "t"},
			[]string{"-fq", "Info@Example.COM", "t"},
			[]string{"-s", "t"},
		)},
		{"messy", map[string]string{"t": messy}, postmapSteps(
			[]string{"t"},
			[]string{"-s", "t"},
			[]string{"-q", "b", "t"},
			[]string{"-q", "KEY", "t"},
		)},
		{"leading-space", map[string]string{"t": "  lead val\nx y\n"}, postmapSteps(
			[]string{"t"}, []string{"-s", "t"},
		)},
		{"dups", map[string]string{"t": "a 1\nb 2\na 3\nA 4\n"}, postmapSteps(
			[]string{"t"}, []string{"-q", "a", "t"},
			[]string{"-w", "t"}, []string{"-q", "a", "t"},
			[]string{"-r", "t"}, []string{"-q", "a", "t"},
			[]string{"-s", "t"},
		)},
		{"stdin-queries", map[string]string{"t": "a 1\nb 2\n", "u": "c 3\na 9\n"}, []postmapStep{
			{args: []string{"t", "u"}},
			{args: []string{"-q", "-", "t", "u"}, stdin: "a\nB\nzz\nc\n"},
			{args: []string{"-q", "-", "t"}, stdin: "zz\n"},
			{args: []string{"-q", "-", "t"}, stdin: ""},
			{args: []string{"-q", "c", "t", "u"}},
			{args: []string{"-q", "a", "t", "missing"}},
			{args: []string{"-q", "x", "t", "missing"}},
		}},
		{"delete", map[string]string{"t": "a 1\nb 2\n"}, []postmapStep{
			{args: []string{"t"}},
			{args: []string{"-d", "A", "t"}},
			{args: []string{"-d", "a", "t"}},
			{args: []string{"-s", "t"}, sort: true},
			{args: []string{"-d", "b", "missing"}},
		}},
		{"incremental", map[string]string{"t": "a 1\nb 2\n"}, []postmapStep{
			{args: []string{"t"}},
			{args: []string{"-i", "t"}, stdin: "new val\na 9\nnovalue\n"},
			{args: []string{"-s", "t"}, sort: true},
		}},
		{"types", map[string]string{"t": "b 2\na 1\nc 3\n"}, postmapSteps(
			[]string{"btree:t"}, []string{"-q", "b", "btree:t"}, []string{"-s", "btree:t"},
			[]string{"cdb:t"}, []string{"-q", "a", "cdb:t"}, []string{"-s", "cdb:t"},
			[]string{"lmdb:t"}, []string{"-q", "c", "lmdb:t"}, []string{"-s", "lmdb:t"},
			[]string{"-q", "a", "texthash:t"},
			[]string{"texthash:t"}, []string{"foo:t"}, []string{"-q", "x", "foo:t"},
			[]string{"-q", "a", "inline:{a=b, {c = d e, f}}"},
			[]string{"-q", "c", "inline:{a=b, { c = d e, f } }"},
			[]string{"-q", "a", "inline:{a=b, x}"},
			[]string{"-q", "a", "inline:a=b"},
			[]string{"-s", "inline:{a=b,c=d}"},
			[]string{"-q", "x", "static:foo"},
			[]string{"-q", "x", "static:{a b}"},
			[]string{"-q", "root", "unix:passwd.byname"},
			[]string{"-q", "root", "unix:group.byname"},
			[]string{"-q", "nosuchuser", "unix:passwd.byname"},
			[]string{"-s", "unix:passwd.byname"},
		)},
		{"errors", map[string]string{"d/": "", "t": "a 1\n"}, postmapSteps(
			[]string{"missing"},
			[]string{"-q", "a", "missing"},
			[]string{"d"},
			[]string{"-s", "-q", "a", "t"},
			[]string{"-q", "a", "-d", "a", "t"},
			[]string{},
			[]string{"-q"},
			[]string{"-z", "t"},
		)},
		{"nul-flags", map[string]string{"t": "a 1\n"}, postmapSteps(
			[]string{"-N", "t"}, []string{"-q", "a", "t"}, []string{"-Nq", "a", "t"}, []string{"-nq", "a", "t"},
			[]string{"-n", "t"}, []string{"-s", "t"},
		)},
		{"long-and-binary", map[string]string{
			"t": "big " + strings.Repeat("x", 1<<20) + "\nk\x01\x02 \xff\xfe\n\x00\x00\n",
		}, postmapSteps(
			[]string{"t"}, []string{"-q", "k\x01\x02", "t"},
		)},
	}
	postmapRunCases(t, "postmap", cases)
}

func TestPostmapLongValue(t *testing.T) {
	ours := oracle.Postdove(t, "postmap")
	dir := postmapSetup(t, "", map[string]string{"t": "big " + strings.Repeat("x", 1<<20) + "\n"})
	cmd := oracle.Run(postmapCommand(ours, dir, "t"), "")
	if cmd.Code != 0 {
		t.Fatalf("build: %+v", cmd)
	}
	res := oracle.Run(postmapCommand(ours, dir, "-q", "big", "t"), "")
	if res.Code != 0 || len(res.Stdout) != 1<<20+1 {
		t.Fatalf("-q big: exit %d, %d bytes", res.Code, len(res.Stdout))
	}
}

// postmapCommand runs one of our binaries with -c . in dir.
func postmapCommand(bin, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, append([]string{"-c", "."}, args...)...)
	cmd.Dir = dir
	return cmd
}
