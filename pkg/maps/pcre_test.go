package maps

import (
	"strings"
	"testing"
)

func TestPCRETranslation(t *testing.T) {
	tb, warns, err := patternsOpen(t, "pcre", `/^(\w+)@(?:mail\.)?example\.com$/ user $1
/^Subject:.*\b(free|winner)\b/ word $1
/^[[:^alpha:]\d]+$/ nonalpha
/\x41\Q.*\E/ lit
/^a.c$/si dot-all
/abc$/i dollar
/x$/E endonly
/^(?i:AB)c$/ mixed
/ab+?/ lazy
`)
	if err != nil || len(warns) != 0 {
		t.Fatalf("open: %v %q", err, warns)
	}
	expectLookup(t, tb, "Joe@mail.EXAMPLE.com", "user Joe", true)
	expectLookup(t, tb, "SUBJECT: a WINNER!", "word WINNER", true)
	expectLookup(t, tb, "12-34", "nonalpha", true)
	expectLookup(t, tb, "za.*", "lit", true)
	expectLookup(t, tb, "a\nc", "dot-all", true)
	expectLookup(t, tb, "xabc", "dollar", true)
	// $ also matches before a final newline in PCRE: refused, not guessed.
	if _, _, err := tb.Lookup("abc\n"); err == nil {
		t.Error("key with final newline against $: want an error")
	}
	expectLookup(t, tb, "abC", "mixed", true)
	expectLookup(t, tb, "\xe9", "nonalpha", true) // byte mode, C locale: not alpha
}

func TestPCRERefusals(t *testing.T) {
	for pat, what := range map[string]string{
		`(?<=a)b`: "lookbehind", `(?=a)`: "lookahead", `(a)\1`: "backreference",
		`a++`: "possessive", `(?>a)`: "atomic", `\Kx`: `\K`, `\R`: `\R`,
		`\p{L}`: "Unicode property", `(a*)*`: "empty string", `(?(1)a)`: "conditional",
		`(?R)`: "recursion", `(*UTF)`: "verb", `a{1001}`: "above 1000",
	} {
		_, _, err := patternsOpen(t, "pcre", "/ok/ fine\n/"+pat+"/ x\n")
		if err == nil || !strings.Contains(err.Error(), "pcre map") || !strings.Contains(err.Error(), "line 2: unsupported") || !strings.Contains(err.Error(), what) {
			t.Errorf("%s: err = %v", pat, err)
		}
	}
}

func TestPCREBadInput(t *testing.T) {
	_, warns, err := patternsOpen(t, "pcre", "/a(/ x\n/[z-a]/ y\n/abc\n/*a/ z\n/"+strings.Repeat("a", 70000)+"/ big\n/a/X x\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pcre map F, line 1: error in regex at offset 2: missing closing parenthesis",
		"pcre map F, line 2: error in regex at offset 3: range out of order in character class",
		"pcre map F, line 3: no closing regexp delimiter \"/\": ignoring this rule",
		"pcre map F, line 4: error in regex at offset 0: quantifier does not follow a repeatable item",
		"pcre map F, line 5: error in regex at offset 70000: regular expression is too large",
		"pcre map F, line 6: ignoring obsolete regexp option \"X\"",
	}
	if strings.Join(warns, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
}
