package local

import (
	"reflect"
	"strings"
	"testing"
)

// TestCommandArgv checks which commands run without a shell, as Postfix
// decides (checked against Postfix 3.7's local(8)).
func TestCommandArgv(t *testing.T) {
	env := []string{"PATH=/usr/bin:/bin"}
	sh := func(c string) []string { return []string{"/bin/sh", "-c", c} }
	for _, c := range []struct {
		command string
		argv    []string
		direct  bool
	}{
		{"/nonexistent/a=b x", []string{"/nonexistent/a=b", "x"}, true},
		{"/nonexistent/a!b@c%d+e,f:g-h_i.j", []string{"/nonexistent/a!b@c%d+e,f:g-h_i.j"}, true},
		{"/nonexistent/a#b", sh("/nonexistent/a#b"), false},
		{"/nonexistent/a^b", sh("/nonexistent/a^b"), false},
		{"/nonexistent/a\xc3\xa9b", sh("/nonexistent/a\xc3\xa9b"), false},
		{"echo hi > /dev/null", sh("echo hi > /dev/null"), false},
		{"exit 75", sh("exit 75"), false},               // a builtin: not in PATH
		{"nonexistentcmd", sh("nonexistentcmd"), false}, // the shell reports it
		{"true\targ", []string{"/usr/bin/true", "arg"}, true},
		{"  ", sh("  "), false},
	} {
		argv, direct := commandArgv(c.command, nil, env)
		if !reflect.DeepEqual(argv, c.argv) || direct != c.direct {
			t.Errorf("%q: %q direct=%v, want %q direct=%v", c.command, argv, direct, c.argv, c.direct)
		}
	}
	if argv, _ := commandArgv("x y", []string{"/bin/bash", "-c"}, env); !reflect.DeepEqual(argv, []string{"/bin/bash", "-c", "x y"}) {
		t.Errorf("local_command_shell: %q", argv)
	}
}

// TestRunCommandResults runs commands and checks the status, DSN and text
// Postfix 3.7 gives for the same command.
func TestRunCommandResults(t *testing.T) {
	for _, c := range []struct {
		command string
		code    int
		dsn     string
		text    string
		notes   []string
	}{
		{"exit 0", statusSent, "", "", nil},
		{"exit 75", statusDefer, "4.3.0", "temporary failure", nil},
		{"exit 67", statusBounce, "5.1.1", "user unknown", nil},
		{"exit 1", statusBounce, "5.3.0", `Command died with status 1: "exit 1"`, nil},
		{"echo some output; exit 1", statusBounce, "5.3.0", `Command died with status 1: "echo some output; exit 1". Command output: some output `, nil},
		{`printf 'a\tb\nc  d\001e\n\n'; exit 1`, statusBounce, "5.3.0", `Command died with status 1: "printf 'a\tb\nc  d\001e\n\n'; exit 1". Command output: a b c  d_e  `, nil},
		{"nonexistentcmd", statusBounce, "5.3.0", `Command died with status 127: "nonexistentcmd". Command output: sh: 1: nonexistentcmd: not found `, nil},
		{"/nonexistent/cmd arg", statusDefer, "4.3.0", "temporary failure. Command output: local: fatal: execvp /nonexistent/cmd: No such file or directory ",
			[]string{"fatal: execvp /nonexistent/cmd: No such file or directory"}},
		{"/etc/passwd", statusDefer, "4.3.0", "temporary failure. Command output: local: fatal: execvp /etc/passwd: Permission denied ",
			[]string{"fatal: execvp /etc/passwd: Permission denied"}},
		{"kill -9 $$", statusDefer, "4.3.0", `Command died with signal 9: "kill -9 $$"`, nil},
	} {
		j := job{Kind: jobCommand, Command: c.command, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"}
		r := runCommand(j, strings.NewReader("Subject: x\n\nbody\n"))
		if r.Code != c.code || r.DSN != c.dsn || r.Text != c.text || !reflect.DeepEqual(r.Notes, c.notes) {
			t.Errorf("%q: %d %q %q %q\nwant %d %q %q %q", c.command, r.Code, r.DSN, r.Text, r.Notes, c.code, c.dsn, c.text, c.notes)
		}
	}
}
