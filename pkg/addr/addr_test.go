package addr

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCanonicalize(t *testing.T) {
	r := &Rewriter{MyOrigin: "vm2.example.ops", MyDomain: "example.ops",
		AppendAtMyOrigin: true, AppendDotMyDomain: true, SwapBangPath: true, PercentHack: true}
	cases := map[string]string{
		"":                         "",
		"root":                     "root@vm2.example.ops",
		"root@vm3":                 "root@vm3.example.ops",
		"root@vm3.other.org":       "root@vm3.other.org",
		"root@vm3.other.org.":      "root@vm3.other.org",
		"root@[10.0.0.1]":          "root@[10.0.0.1]",
		"host!user":                "user@host.example.ops",
		"user%host.org":            "user@host.org",
		"@hop1,@hop2:bob@x.org":    "bob@x.org",
		"  alice  ":                "alice@vm2.example.ops",
		"root@":                    "root@vm2.example.ops",
		"MixedCase@Example.ORG":    "MixedCase@Example.ORG",
		"a.b@vm2.example.ops":      "a.b@vm2.example.ops",
		"user%host@relay.example.": "user%host@relay.example",
	}
	for in, want := range cases {
		if got := r.Canonicalize(in); got != want {
			t.Errorf("Canonicalize(%q) = %q, want %q", in, got, want)
		}
	}
	r.AppendDotMyDomain = false
	if got := r.Canonicalize("root@vm3"); got != "root@vm3" {
		t.Errorf("append_dot_mydomain=no: got %q", got)
	}
	r.AppendAtMyOrigin = false
	if got := r.Canonicalize("root"); got != "root" {
		t.Errorf("append_at_myorigin=no: got %q", got)
	}
}

func TestResolve(t *testing.T) {
	r := &Resolver{
		MyHostname:          "vm2.example.ops",
		MyDestination:       []string{"vm2.example.ops", "localhost.example.ops", "localhost"},
		VirtualAliasDomains: []string{"alias.example"},
		RelayDomains:        []string{".relay.example"},
		LocalAddrs:          []string{"127.0.0.1", "::1"},
	}
	cases := []struct{ in, class, hop string }{
		{"root@vm2.example.ops", ClassLocal, "vm2.example.ops"},
		{"root@VM2.Example.OPS.", ClassLocal, "vm2.example.ops"},
		{"root", ClassLocal, "vm2.example.ops"},
		{"root@[127.0.0.1]", ClassLocal, "[127.0.0.1]"},
		{"root@[10.9.9.9]", ClassDefault, "[10.9.9.9]"},
		{"x@alias.example", ClassVirtualAlias, "alias.example"},
		{"x@a.relay.example", ClassRelay, "a.relay.example"},
		{"x@vm3.example.ops", ClassDefault, "vm3.example.ops"},
	}
	for _, c := range cases {
		class, hop := r.Resolve(c.in)
		if class != c.class || hop != c.hop {
			t.Errorf("Resolve(%q) = %s, %s; want %s, %s", c.in, class, hop, c.class, c.hop)
		}
	}
	r.RelayHost = "[mail.isp.example]:587"
	if class, hop := r.Resolve("x@vm3.example.ops"); class != ClassDefault || hop != "[mail.isp.example]:587" {
		t.Errorf("relayhost: got %s, %s", class, hop)
	}
}

func TestParseList(t *testing.T) {
	cases := map[string][]string{
		`a@b, "X, Y" <c@d>`:                       {"a@b", "c@d"},
		`e`:                                       {"e"},
		`alice@x.org (Alice, the boss)`:           {"alice@x.org"},
		`team: bob@x, carol@y;, dave`:             {"bob@x", "carol@y", "dave"},
		`undisclosed-recipients:;`:                nil,
		`"john doe"@example.com`:                  {"john doe@example.com"},
		"  first@x,\r\n\tsecond@y  ":              {"first@x", "second@y"},
		`<>`:                                      nil,
		`Name <a@b>, , <c@d>`:                     {"a@b", "c@d"},
		`broken <a@b`:                             {"a@b"},
		"\x00\xff junk":                           {"\x00\xffjunk"},
		`"unterminated <x@y>`:                     {`"unterminated <x@y>`},
		`(unterminated comment a@b`:               nil,
		`"q\"x" <q@r>, s\@t`:                      {"q@r", `s\@t`},
		`Undisclosed recipients: ;, real@example`: {"real@example"},
	}
	for in, want := range cases {
		if got := ParseList(in); !reflect.DeepEqual(got, want) {
			t.Errorf("ParseList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRewriteList(t *testing.T) {
	up := func(a string) string {
		if a == "keep@x" {
			return a
		}
		return a + "@dom"
	}
	cases := map[string]string{
		`alice, "Bob B" <bob>`:     `alice@dom, "Bob B" <bob@dom>`,
		`keep@x (The Keeper)`:      `keep@x (The Keeper)`,
		`carol (Carol C)`:          `carol@dom (Carol C)`,
		`list: a, b;`:              `list: a@dom, b@dom;`,
		`"x y" <z>`:                `"x y" <z@dom>`,
		`"john doe"`:               `"john doe"@dom`,
		"  dave\r\n\t, erin":       "  dave@dom\r\n\t, erin@dom",
		`undisclosed-recipients:;`: `undisclosed-recipients:;`,
	}
	for in, want := range cases {
		if got := RewriteList(in, up); got != want {
			t.Errorf("RewriteList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCutTokens(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"a0@x.example, a1@x.example", 6, "a0@x.example,"},
		{"a0@x.example, a1@x.example", 9, "a0@x.example, a1@x"},
		{" a@b ", 3, " a@b"},
		{`"q u o t e"@d (a (nested) comment) [1.2.3.4] x`, 4, `"q u o t e"@d (a (nested) comment)`},
		{`a\,b, c`, 1, `a\,b`},
		{"<a@b>", 2, "<a"},
		{"a, b", 0, "a, b"},
		{"a, b", 100, "a, b"},
		{`"open, (x`, 1, `"open, (x`},
		{`x\`, 1, `x\`},
	} {
		if got := CutTokens(tc.in, tc.max); got != tc.want {
			t.Errorf("CutTokens(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// TestFoldHeader: the layouts are what Postfix 3.7's cleanup wrote for
// the same headers after rewriting their addresses.
func TestFoldHeader(t *testing.T) {
	d := "@mail.example.test"
	for _, tc := range []struct{ name, in, want string }{
		{"To", "alice" + d + ", bob" + d + ", carol" + d + ", dave" + d + ", erin" + d + ", frank" + d,
			"To: alice" + d + ", bob" + d + ",\n\tcarol" + d + ", dave" + d + ",\n\terin" + d + ", frank" + d + "\n"},
		{"Cc", `  Joe   Q  <joe` + d + `>  (a   comment) ,  "x  y"@z.example,,, team: m` + d + `, o@p.example; last` + d,
			`Cc: Joe Q <joe` + d + `>(a   comment), "x  y"@z.example, , ,` + "\n\tteam: m" + d + ", o@p.example;, last" + d + "\n"},
		{"To", "alice" + d + ",\n  bob" + d + "\n", "To: alice" + d + ", bob" + d + "\n"},
		{"To", `<a` + d + `>, b@c.example (x), "d" <e` + d + `>, f` + d + `(y), g <h` + d + `> (z), i.j@k.example`,
			"To: <a" + d + ">, b@c.example (x),\n\t\"d\" <e" + d + ">, f" + d + " (y),\n\tg <h" + d + ">(z), i.j@k.example\n"},
		{"To", "alice" + d, "To: alice" + d + "\n"},
		{"Reply-To", ` "Quoted, Name" <rt` + d + `>`, `Reply-To: "Quoted, Name" <rt` + d + ">\n"},
	} {
		if got := FoldHeader(tc.name, tc.in); got != tc.want {
			t.Errorf("FoldHeader(%q, %q) =\n%s\nwant\n%s", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestResolveTableProblem: a domain table that cannot be read is a
// resolver failure, not "not local" (mail would be sent away); once the
// table exists it is read without a new Resolver.
func TestResolveTableProblem(t *testing.T) {
	dir := t.TempDir()
	spec := "texthash:" + filepath.Join(dir, "domains")
	r := &Resolver{MyHostname: "vm2.example.ops", MyDestination: []string{"localhost", spec}}
	_, _, err := r.ResolveErr("bob@Example.COM")
	var te *TableError
	if !errors.As(err, &te) || err.Error() != "mydestination: "+spec+": table lookup problem" {
		t.Fatalf("missing table: %v", err)
	}
	if w := te.Warnings(); len(w) != 2 || !strings.HasSuffix(w[0], " is unavailable. open "+filepath.Join(dir, "domains")+": No such file or directory") || w[1] != err.Error() {
		t.Errorf("warnings %q", w)
	}
	if r.IsLocalDomain("example.com") {
		t.Error("IsLocalDomain with a missing table")
	}
	if class, _, err := r.ResolveErr("bob@localhost"); class != ClassLocal || err != nil {
		t.Errorf("localhost before the table: %s %v", class, err)
	}
	os.WriteFile(filepath.Join(dir, "domains"), []byte("example.com OK\n"), 0644)
	if class, hop, err := r.ResolveErr("bob@example.com"); class != ClassLocal || hop != "example.com" || err != nil {
		t.Errorf("after the table appeared: %s %s %v", class, hop, err)
	}
	os.WriteFile(filepath.Join(dir, "domains"), []byte("example.org OK\n"), 0644)
	os.Chtimes(filepath.Join(dir, "domains"), time.Now().Add(2*time.Second), time.Now().Add(2*time.Second))
	if class, _, err := r.ResolveErr("bob@example.com"); class != ClassDefault || err != nil {
		t.Errorf("after the table changed: %s %v", class, err)
	}
}
