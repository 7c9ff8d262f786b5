package maps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// patternsOpen writes content to a file and opens it as typ:, collecting
// warnings.
func patternsOpen(t *testing.T, typ, content string) (Table, []string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "table")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	var warns []string
	tb, err := Open(typ+":"+p, Options{Warn: func(m string) { warns = append(warns, strings.ReplaceAll(m, p, "F")) }})
	return tb, warns, err
}

func expectLookup(t *testing.T, tb Table, key, want string, found bool) {
	t.Helper()
	v, ok, err := tb.Lookup(key)
	if err != nil || ok != found || v != want {
		t.Errorf("Lookup(%q) = %q, %v, %v; want %q, %v", key, v, ok, err, want, found)
	}
}

func TestRegexpSubstitutionAndFlags(t *testing.T) {
	tb, warns, err := patternsOpen(t, "regexp", "/^(a|ab)(c|bcd)(d*)$/ $1-$2-$3\n/^CASE/i sensitive\n/^case/ insensitive\n/^x(.)/!/xz/ x$1 ${1}$$\nif /^in/\n/block/ in-block\nendif\n/^a\\(b\\)\\{2\\}$/x basic $1\r\n")
	if err != nil || len(warns) != 0 {
		t.Fatalf("open: %v %q", err, warns)
	}
	expectLookup(t, tb, "abcd", "a-bcd-", true) // what the C library answers (compat test)
	expectLookup(t, tb, "CASE", "sensitive", true)
	expectLookup(t, tb, "Case", "insensitive", true)
	expectLookup(t, tb, "xy", "xy y$", true)
	expectLookup(t, tb, "xz", "", false)
	expectLookup(t, tb, "inblock", "in-block", true)
	expectLookup(t, tb, "block", "", false)
	expectLookup(t, tb, "abb", "basic b", true) // CRLF: the CR is trailing whitespace
	expectLookup(t, tb, "caf\xc3\xa9", "", false)
}

func TestRegexpBadInput(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	tb, warns, err := patternsOpen(t, "regexp", "/a(/ bad\n/abc no-close\n/a/q flag\nif /b/\n\xff\x00junk\n/^b/ "+long+"\n/(x)/ $2\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"regexp map F, line 1: Unmatched ( or \\(",
		"regexp map F, line 2: no closing regexp delimiter \"/\": skipping this rule",
		"regexp map F, line 3: unknown regexp option \"q\": skipping this rule",
		"regexp map F, line 5: no closing regexp delimiter \"\xff\": skipping this rule",
		"regexp map F, line 7: out of range replacement index \"2\": skipping this rule",
		"regexp map F, line 4: IF has no matching ENDIF",
	}
	if strings.Join(warns, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
	expectLookup(t, tb, "bb", long, true) // a 1 MB line
	if _, err := Open("regexp:/nonexistent/x", Options{}); err == nil || err.Error() != "open /nonexistent/x: No such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	if tb, err := Open("regexp:"+t.TempDir(), Options{}); err != nil {
		t.Errorf("directory: %v", err)
	} else {
		expectLookup(t, tb, "x", "", false)
	}
}

func TestRegexpRefusesBackreference(t *testing.T) {
	_, _, err := patternsOpen(t, "regexp", "/ok/ fine\n/(a)\\1/ twice\n")
	if err == nil || !strings.Contains(err.Error(), "line 2: unsupported regular expression construct at offset 3: backreference \\1") {
		t.Errorf("err = %v", err)
	}
}
