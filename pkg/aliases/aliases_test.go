package aliases

import (
	"reflect"
	"testing"
)

func TestParseEntry(t *testing.T) {
	for _, c := range []struct{ line, name, value string }{
		{"root: john", "root", "john"},
		{"sales: charles,john,  mike", "sales", "charles, john, mike"},
		{`"a b": x`, "a b", "x"},
		{"|cmd: y", "|cmd", "y"},
		{`x: y:  "|cmd arg", /file, :include:/etc/inc`, "x", `y:"|cmd arg", /file, :include:/etc/inc`},
		{`v: \\backslash, \quoted`, "v", `"\\backslash", quoted`},
		{`v: "Joe Q" <joe@x.com>, (comment) bob`, "v", `"Joe Q" <joe@x.com>, (comment) bob`},
		{"v: a |b", "v", "a|b"},
		{"Mixed: Case", "Mixed", "Case"},
	} {
		n, v, err := ParseEntry(c.line)
		if err != nil || n != c.name || v != c.value {
			t.Errorf("%q: got %q %q %v, want %q %q", c.line, n, v, err, c.name, c.value)
		}
	}
	for line, want := range map[string]error{
		"nocolon": ErrNeedPair, ": empty": ErrNeedPair, "x:": ErrNeedPair,
		"u@h: x": ErrNotLocal, "\x00\xff\x01": ErrNeedPair, `"unterminated: x`: ErrNeedPair,
	} {
		if _, _, err := ParseEntry(line); err != want {
			t.Errorf("%q: err %v, want %v", line, err, want)
		}
	}
}

func TestParseTargets(t *testing.T) {
	got := ParseTargets(`john, "|/usr/bin/vacation -a john", |"/bin/cmd x", /var/log/mail.copy, :include:/etc/mail/staff, ` +
		`bob@example.com, "Joe Q" <joe@x.com>, , :INCLUDE:/x`)
	want := []Target{
		{Address, "john"},
		{Command, "/usr/bin/vacation -a john"},
		{Command, "/bin/cmd x"},
		{File, "/var/log/mail.copy"},
		{Include, "/etc/mail/staff"},
		{Address, "bob@example.com"},
		{Address, "Joe Q <joe@x.com>"},
		{Include, "/x"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if len(ParseTargets("")) != 0 || len(ParseTargets(" , ,")) != 0 {
		t.Error("empty values gave targets")
	}
	// what postalias stored must split back the same way
	_, v, _ := ParseEntry(`sales: charles,john,"|cmd  arg"`)
	if got := ParseTargets(v); !reflect.DeepEqual(got, []Target{{Address, "charles"}, {Address, "john"}, {Command, "cmd  arg"}}) {
		t.Errorf("stored value %q splits as %+v", v, got)
	}
}
