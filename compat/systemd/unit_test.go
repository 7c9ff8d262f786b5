package systemd

import (
	"reflect"
	"strings"
	"testing"
)

const sample = `# a comment
[Unit]
Description=Test unit
; another comment

[Service]
Type=forking
ExecStartPre=-/bin/false
ExecStartPre=/bin/echo \
  one two
Environment="A=x y" B=z
ExecStart=/bin/sh -c 'echo "$A" ${B}'
ExecStart=
ExecStart=/bin/true
`

func TestParse(t *testing.T) {
	u, err := Parse(strings.NewReader(sample), "sample.service")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Value("Unit", "Description"); got != "Test unit" {
		t.Errorf("Description = %q", got)
	}
	if got := u.Values("Service", "ExecStartPre"); !reflect.DeepEqual(got, []string{"-/bin/false", "/bin/echo one two"}) {
		t.Errorf("ExecStartPre = %q", got)
	}
	if got := u.Values("Service", "ExecStart"); !reflect.DeepEqual(got, []string{"/bin/true"}) {
		t.Errorf("ExecStart after reset = %q", got)
	}
	for _, bad := range []string{"Key=value\n", "[Service]\nnot an assignment\n"} {
		if _, err := Parse(strings.NewReader(bad), "bad.service"); err == nil || !strings.Contains(err.Error(), "bad.service:") {
			t.Errorf("Parse(%q): %v, want an error naming the file and line", bad, err)
		}
	}
}

func TestSplitWords(t *testing.T) {
	env := []string{"A=x y", "B=z"}
	for line, want := range map[string][]string{
		`/bin/sh -c 'echo "$A" ${B}'`: {"/bin/sh", "-c", `echo "$A" ${B}`},
		`/bin/echo "$A" ${B} $ \"q\"`: {"/bin/echo", "x y", "z", "$", `"q"`},
		`  a   b  `:                   {"a", "b"},
	} {
		got, err := splitWords(line, env)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
	for _, bad := range []string{`"open`, `${B`} {
		if _, err := splitWords(bad, env); err == nil {
			t.Errorf("splitWords(%q): no error", bad)
		}
	}
}

// TestServiceForking runs a forking service whose ExecStart leaves a
// process behind that holds its output: Start must report it.
func TestServiceForking(t *testing.T) {
	unit := "[Service]\nType=forking\nExecStart=/bin/sh -c 'sleep 3 & echo started'\n"
	u, err := Parse(strings.NewReader(unit), "leak.service")
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{Unit: u, Timeout: 500e6}
	if err := s.Start(); err == nil || !strings.Contains(err.Error(), "output still open") {
		t.Errorf("Start: %v, want the output pipe held open", err)
	}
	unit = "[Service]\nType=forking\nExecStart=/bin/sh -c 'sleep 3 >/dev/null 2>&1 & echo started'\n"
	u, _ = Parse(strings.NewReader(unit), "ok.service")
	s = &Service{Unit: u, Timeout: 5e9}
	if err := s.Start(); err != nil || !strings.Contains(s.Output.String(), "started") {
		t.Errorf("Start: %v, output %q", err, s.Output.String())
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("[Service]\nExecStart=/bin/a \\\n")
	f.Fuzz(func(t *testing.T, text string) {
		u, err := Parse(strings.NewReader(text), "fuzz.service")
		if err == nil {
			u.Value("Service", "ExecStart")
		}
	})
}

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`a "b c" 'd' \e $A ${B} ${`, `"`, `$`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		splitWords(line, []string{"A=1", "B=2"})
	})
}
