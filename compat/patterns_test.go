package compat

// Differential tests of the cidr:, regexp: and pcre: lookup tables against
// Debian's Postfix: both postmap commands run `postmap -q - TYPE:FILE` on
// the same tables and keys, and must print the same (stdout, exit code,
// and the shape of stderr).

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"postdove/compat/oracle"
	"postdove/pkg/maps"
)

// patternsKeys are lookup keys covering the test tables.
var patternsKeys = []string{
	"192.168.2.5", "10.1.1.1", "172.16.1.3", "5.6.7.8", "1.2.3.4", "1.1.1.3",
	"1.1.1.4", "1.2.3.7", "1.2.3.11", "::1", "::2", "2001:db8::1", "2001:DB9::1",
	"::ffff:1.2.3.4", "1.2.3.04", "foo", "[1.2.3.5]",
	"user+foo@example.com", "CaSe", "case2", "CASE2", "inblock", "bx", "xz", "us",
	"kz", "pz", "ax", "ab", "cx", "ef", "g", "y",
	"Subject: buy VIAGRA now", "Subject: ", "Subject:", "Received: from localhost by x",
	"X-Mailer: Microsoft Outlook", "Content-Type: application/octet-stream; name=\"a.EXE\"",
	"From: Joe <joe@example.org>", "To: joe.x@example.com", "To: aa", "To: (a){2}",
	"Cc: x@bad.test", "Cc: x@bad.tester", "HELLO THERE", "Date: Mon, 1 Jan 1999",
	"X-Spam-Level: ******", "abbc", "ac", "Message-ID: <x@y>", "abcd", "abd",
	"joe@example.com", "postmaster@x.org", "a@b.ru", "a@mail.spam.test",
	"Subject: You are a WINNER!", "Subject: =?utf-8?B?xyz", "X-Mailer:  Thunderbird 1",
	"Received: from [10.0.0.1] by", "RECEIVED: FROM 10.0.0.255", "From: \"x\" <ann@x.y>",
	"Content-Disposition: attachment; filename=\"x.zip\"", "To: ", "abbbc", "a\tc",
	"Subject: lottery", "lottery", "x", "xy", "caf\xc3\xa9", "\xe9t\xc9",
}

var (
	patternsCfOnce sync.Once
	patternsCfDir  string
)

// patternsConf returns one config dir for all oracle runs: the oracle's
// postmap is slow the first time it meets a new config directory.
func patternsConf(t *testing.T, o *oracle.Oracle) string {
	patternsCfOnce.Do(func() {
		dir, err := os.MkdirTemp("", "postdove-patterns-cf")
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "main.cf"), []byte(o.DynamicMapsConfig()), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		patternsCfDir = dir
	})
	return patternsCfDir
}

// patternsOracle runs the oracle's postmap -q - on table (TYPE:FILE).
func patternsOracle(t *testing.T, o *oracle.Oracle, table string, keys []string) oracle.Result {
	t.Helper()
	return oracle.Run(o.Command("postmap", "-c", patternsConf(t, o), "-q", "-", table), strings.Join(keys, "\n")+"\n")
}

// patternsOurs runs our postmap the same way.
func patternsOurs(t *testing.T, o *oracle.Oracle, table string, keys []string) oracle.Result {
	t.Helper()
	cmd := exec.Command(oracle.Postdove(t, "postmap"), "-c", patternsConf(t, o), "-q", "-", table)
	return oracle.Run(cmd, strings.Join(keys, "\n")+"\n")
}

func patternsCompare(t *testing.T, o *oracle.Oracle, table string, keys []string) {
	t.Helper()
	want := patternsOracle(t, o, table, keys)
	got := patternsOurs(t, o, table, keys)
	if got.Stdout != want.Stdout {
		t.Errorf("%s: stdout differs\n got: %q\nwant: %q", table, got.Stdout, want.Stdout)
	}
	if got.Code != want.Code {
		t.Errorf("%s: exit %d, oracle %d", table, got.Code, want.Code)
	}
	if g, w := oracle.StderrShape(got.Stderr), oracle.StderrShape(want.Stderr); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: stderr differs\n got: %q\nwant: %q", table, g, w)
	}
}

func TestPatternsTables(t *testing.T) {
	o := oracle.Get(t)
	files, err := filepath.Glob("testdata/patterns/*.*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test tables: %v", err)
	}
	for _, f := range files {
		typ := strings.TrimPrefix(filepath.Ext(f), ".")
		if typ != "cidr" && typ != "regexp" && typ != "pcre" {
			continue
		}
		abs, _ := filepath.Abs(f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			patternsCompare(t, o, typ+":"+abs, patternsKeys)
		})
	}
}

// Bad input: CRLF, missing file, a directory, binary junk, 1 MB line.
func TestPatternsBadInput(t *testing.T) {
	o := oracle.Get(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	long := strings.Repeat("a", 1<<20)
	cases := map[string]string{
		"crlf":   "1.2.3.0/24 crlf\r\n/^a(.)/ crlf $1\r\n",
		"junk":   "\xff\xfe\x00/\x01\x02/ \x80\n\x7f\x00garbage\n[\x00]\n",
		"long":   "/" + long + "/ long\n1.2.3.4 " + long + "\n",
		"tabs":   "1.2.3.4\t\tTAB\tVALUE\t\n/^a/\t\tTAB\n",
		"noeq":   "1.2.3.4\n/^a/\nif\nendif\n",
		"nested": "if /a/\nif /b/\n/c/ abc\nendif\n",
	}
	keys := []string{"1.2.3.4", "abc", "ab", "a" + long[:100], "\x80"}
	for name, content := range cases {
		p := write(name, content)
		for _, typ := range []string{"cidr", "regexp", "pcre"} {
			t.Run(name+"/"+typ, func(t *testing.T) { patternsCompare(t, o, typ+":"+p, keys) })
		}
	}
	for _, typ := range []string{"cidr", "regexp", "pcre"} {
		t.Run("missing/"+typ, func(t *testing.T) {
			patternsCompare(t, o, typ+":"+filepath.Join(dir, "nonexistent"), keys)
		})
		t.Run("directory/"+typ, func(t *testing.T) {
			patternsCompare(t, o, typ+":"+dir, keys)
		})
	}
}

// The pcre corpus: every pattern postdove accepts must give the oracle's
// answers (match or not, and every group) on every input; a pattern
// postdove refuses must be one PCRE accepts (refusals are for constructs
// we cannot honour, not for mistakes) and is listed in the log.
func TestPatternsPCRECorpus(t *testing.T) {
	o := oracle.Get(t)
	corpus := patternsLines(t, "testdata/patterns/pcre-corpus.txt")
	inputs := patternsLines(t, "testdata/patterns/pcre-inputs.txt")
	dir := t.TempDir()
	refused := 0
	for n, line := range corpus {
		file := filepath.Join(dir, "t.pcre")
		result := ""
		// Refer to as many groups as the pattern has, so that every group
		// is compared; the count comes from a probe open.
		for _, nsub := range []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0} {
			r := "m"
			for g := 1; g <= nsub; g++ {
				r += "|$" + string(rune('0'+g))
			}
			if err := os.WriteFile(file, []byte(line+" "+r+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var warns []string
			tb, err := maps.Open("pcre:"+file, maps.Options{Warn: func(m string) { warns = append(warns, m) }})
			if err != nil {
				refused++
				t.Logf("refused: %s: %v", line, err)
				res := oracle.Run(o.Command("postmap", "-c", patternsConf(t, o), "-q", "x", "pcre:"+file), "")
				if strings.Contains(res.Stderr, "error in regex") {
					t.Errorf("pattern %d %s: refused as unsupported, but PCRE itself rejects it: %s", n, line, res.Stderr)
				}
				result = ""
				break
			}
			tb.Close()
			if len(warns) == 0 || !strings.Contains(warns[0], "out of range replacement index") {
				result = r
				break
			}
		}
		if result == "" {
			continue
		}
		t.Run(line, func(t *testing.T) {
			patternsCompare(t, o, "pcre:"+file, inputs)
		})
	}
	t.Logf("%d of %d corpus patterns refused", refused, len(corpus))
}

func patternsLines(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
