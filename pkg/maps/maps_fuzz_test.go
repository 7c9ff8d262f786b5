package maps

import (
	"os"
	"path/filepath"
	"testing"
)

// fuzzTable writes src as a table file of type typ, opens it, and looks
// up key and a few fixed keys: no panic, no hang, and a lookup either
// finds a value or reports not found or an error, never both.
func fuzzTable(t *testing.T, typ, src, key string) {
	path := filepath.Join(t.TempDir(), "table")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	tb, err := Open(typ+":"+path, Options{FoldCase: true, Warn: func(string) {}})
	if err != nil {
		return
	}
	defer tb.Close()
	for _, k := range []string{key, "10.1.2.3", "2001:db8::1", "user@example.com", "", "\x00"} {
		v, found, err := tb.Lookup(k)
		if (err != nil && found) || (!found && v != "") {
			t.Fatalf("%s lookup %q: value %q found %v err %v", typ, k, v, found, err)
		}
	}
}

func FuzzCIDRTable(f *testing.F) {
	f.Add("10.0.0.0/8 ten\n192.168.2.0/24 REJECT\n2001:db8::/32 v6\n", "10.1.2.3")
	f.Add("if !172.16.0.0/12\n[1.2.3.4] x\nendif\n0.0.0.0/0 any\n", "1.2.3.4")
	f.Add("1.2.3.0/33 x\nif ::/0\n\xff\x00\n  cont\n", "::1")
	f.Fuzz(func(t *testing.T, src, key string) { fuzzTable(t, "cidr", src, key) })
}

func FuzzRegexpTable(f *testing.F) {
	f.Add("/^(.*)@example\\.com$/ ${1}@other.org\n!/x/ y\n", "user@example.com")
	f.Add("if /a/\n/b(c)?/i $1 $2\nendif\n/[/ bad\n", "ab")
	f.Add("/^(a+)+$/ x$$y\n/(x)|(y)/ ${2}\n  continued\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa!")
	f.Fuzz(func(t *testing.T, src, key string) { fuzzTable(t, "regexp", src, key) })
}

func FuzzPCRETable(f *testing.F) {
	f.Add("/^(?<u>.*)@example\\.com$/ ${1}\n/\\d+/ num\n", "user@example.com")
	f.Add("if !/x/\n/(?i)ab/ $1\nendif\n/a{2,}/x y\n", "AAB")
	f.Add("/(?=a)b/ lookahead\n/\\Qa.b\\E/ lit\n/[[:alpha:]]+/ word\n", "a.b")
	f.Fuzz(func(t *testing.T, src, key string) { fuzzTable(t, "pcre", src, key) })
}

// FuzzInlineTable opens inline:{...} with the fuzzed text between the
// braces and looks up key.
func FuzzInlineTable(f *testing.F) {
	f.Add("a=b, { c = d e, f }, G=h", "c")
	f.Add("{a=b}, x", "a")
	f.Add("{{a=b}", "{a")
	f.Add("=b, {=}, {a = {b}}", "a")
	f.Fuzz(func(t *testing.T, body, key string) {
		tb, err := Open("inline:{"+body+"}", Options{FoldCase: true})
		if err != nil {
			return
		}
		defer tb.Close()
		v, found, err := tb.Lookup(key)
		if (err != nil && found) || (!found && v != "") {
			t.Fatalf("lookup %q: value %q found %v err %v", key, v, found, err)
		}
	})
}
