package addr

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseList parses an address-list header value. Properties: no
// panic; rewriting with the identity leaves the text byte for byte; and
// rewriting each address to a new one yields a list that parses to the
// new addresses, in order (the rest of the text is left alone).
func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		"alice, Bob <bob@vm3>",
		`"a b"@c.d (comment), team: x@y, z;`,
		"Name <a@b> (c (nested)), <>, @route:a@b",
		"\"unterminated, <open, (open",
		"a@b\r\n\tc@d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs := ParseList(s)
		if got := RewriteList(s, func(a string) string { return a }); got != s {
			t.Fatalf("identity rewrite changed %q to %q", s, got)
		}
		for _, a := range addrs {
			Split(a)
			Quote(a)
		}
		// FoldHeader keeps the addresses, and every line after the first
		// is a continuation line (when s is a header value: its lines
		// after the first are).
		folded := FoldHeader("To", s)
		if lines := strings.TrimSuffix(s, "\n"); strings.Count(lines, "\n") != strings.Count(lines, "\n ")+strings.Count(lines, "\n\t") {
			return
		}
		body := strings.TrimSuffix(folded, "\n")
		if !strings.HasPrefix(folded, "To:") || !strings.HasSuffix(folded, "\n") ||
			strings.Count(body, "\n") != strings.Count(body, "\n ")+strings.Count(body, "\n\t") {
			t.Fatalf("FoldHeader(%q) = %q", s, folded)
		}
		// (ParseList does not see a quote inside a [domain literal] or a
		// (comment), or after a backslash outside quotes, as part of it:
		// lists with those are left out.)
		if again := ParseList(strings.TrimSuffix(folded[3:], "\n")); !strings.ContainsAny(s, "[(\\") && !reflect.DeepEqual(again, addrs) && !(len(again) == 0 && len(addrs) == 0) {
			t.Fatalf("FoldHeader(%q) = %q: addresses %q, were %q", s, folded, again, addrs)
		}
		// CutTokens keeps a prefix, and cutting it again changes nothing.
		for _, max := range []int{1, 2, 5, len(s) / 3} {
			cut := CutTokens(s, max)
			if !strings.HasPrefix(s, cut) || CutTokens(cut, max) != cut {
				t.Fatalf("CutTokens(%q, %d) = %q", s, max, cut)
			}
		}
	})
}

// FuzzQuote: Quote's output, parsed as a one-address list, gives the
// address back.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"alice", "a b@c.d", `a"b@c`, `x\y`, "user@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, a string) {
		q := Quote(a)
		got := ParseList(q)
		if plain(a) && !reflect.DeepEqual(got, []string{a}) {
			t.Fatalf("Quote(%q) = %q parses to %q", a, q, got)
		}
	})
}

// plain reports whether a is an address Quote is meant to round-trip: no
// characters that cannot stand in a header, no empty parts, and no
// specials in the domain.
func plain(a string) bool {
	if a == "" {
		return false
	}
	local, domain := Split(a)
	if local == "" {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] < ' ' || a[i] >= 0x7f {
			return false
		}
	}
	for i := 0; i < len(domain); i++ {
		switch domain[i] {
		case ' ', '"', '(', ')', ',', ':', ';', '<', '>', '[', ']', '\\', '@':
			return false
		}
	}
	return true
}
