package postlog

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestMain(t *testing.T) {
	dir := t.TempDir()
	maillog := filepath.Join(dir, "maillog")
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("maillog_file = "+maillog+"\nmyhostname = vm2.example.ops\n"), 0o644)
	run := func(stdin string, args ...string) (int, string) {
		var errb bytes.Buffer
		code := Main(append([]string{"-c", dir}, args...), strings.NewReader(stdin), &errb)
		return code, errb.String()
	}
	if code, errs := run("", "hello", "world"); code != 0 || errs != "" {
		t.Errorf("postlog hello world: %d %q", code, errs)
	}
	run("", "-t", "mytag", "-p", "Warning", "disk", "full")
	run("one\n\ntwo", "-i")
	if code, errs := run("", "-p", "bogus", "x"); code != 1 || errs != "postlog: fatal: bad severity: \"bogus\"\n" {
		t.Errorf("-p bogus: %d %q", code, errs)
	}
	if code, errs := run("", "-t"); code != 1 || errs != "postlog: option requires an argument -- 't'\npostlog: fatal: "+Usage+"\n" {
		t.Errorf("-t: %d %q", code, errs)
	}
	b, _ := os.ReadFile(maillog)
	got := regexp.MustCompile(`(?m)^\S+ +\d+ \d\d:\d\d:\d\d vm2 ([^\[]*)\[\d+\]: `).ReplaceAllString(string(b), "$1: ")
	want := "postfix/postlog: hello world\nmytag: warning: disk full\npostfix/postlog: one\npostfix/postlog: \npostfix/postlog: two\n"
	if got != want {
		t.Errorf("maillog:\n%s\nwant:\n%s", got, want)
	}
}
