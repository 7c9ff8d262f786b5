package delivery

import (
	"strings"
	"testing"
)

func TestSplitDSN(t *testing.T) {
	cases := []struct{ in, def, dsn, text string }{
		{"5.1.1 bob has left", "5.0.0", "5.1.1", "bob has left"},
		{"4.4.1 try later", "4.0.0", "4.4.1", "try later"},
		{"mail for you is refused", "5.0.0", "5.0.0", "mail for you is refused"},
		{"5.1 short", "5.0.0", "5.0.0", "5.1 short"},
		{"6.1.1 odd class", "5.0.0", "5.0.0", "6.1.1 odd class"},
		{"5.1.1", "5.0.0", "5.1.1", ""},
		{"", "2.0.0", "2.0.0", ""},
	}
	for _, c := range cases {
		if dsn, text := SplitDSN(c.in, c.def); dsn != c.dsn || text != c.text {
			t.Errorf("SplitDSN(%q) = %q, %q; want %q, %q", c.in, dsn, text, c.dsn, c.text)
		}
	}
}

// The next hop of error: and discard: comes from transport_maps: any
// text gives a status code in the agent's class and never panics.
func FuzzSplitDSN(f *testing.F) {
	for _, s := range []string{"5.1.1 gone", "4.4.1", "", "x", "5..1 y", "2.0.0 ok", "9.9.9 z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dsn, text := SplitDSN(s, "5.0.0")
		if len(dsn) < 5 || strings.Count(dsn, ".") != 2 || !strings.Contains("245", dsn[:1]) {
			t.Fatalf("SplitDSN(%q) = %q", s, dsn)
		}
		if len(text) > len(s) {
			t.Fatalf("text %q longer than %q", text, s)
		}
	})
}
