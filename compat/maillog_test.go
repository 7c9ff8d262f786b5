package compat

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"postdove/compat/oracle"
	"postdove/pkg/maillog"
)

// maillogStrip drops what differs between two runs: the time and the pid.
var maillogStrip = regexp.MustCompile(`^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d (\S+ \S+)\[\d+\]: `)

func maillogShape(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		m := maillogStrip.FindStringSubmatchIndex(l)
		if m == nil {
			t.Fatalf("%s: line not in maillog layout: %q", path, l)
		}
		out = append(out, l[m[2]:m[3]]+": "+l[m[1]:])
	}
	return out
}

// TestMaillogFileMatchesPostlog writes the same records with Postfix's
// postlog(1) (maillog_file set, no postlogd: it appends itself) and with
// pkg/maillog, and compares them.
func TestMaillogFileMatchesPostlog(t *testing.T) {
	o := oracle.Get(t)
	// maillog_file_prefixes allows /var and /dev/stdout only.
	dir, err := os.MkdirTemp("/var/tmp", "maillog-compat")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	theirs := filepath.Join(dir, "postfix.log")
	ours := filepath.Join(dir, "postdove.log")
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("maillog_file = "+theirs+"\nmyhostname = vm2.example.ops\n"), 0644)
	os.WriteFile(filepath.Join(dir, "master.cf"), nil, 0644)
	records := []struct{ level, text string }{
		{"info", "3F2A81234B: from=<root@vm2.example.ops>, size=412, nrcpt=1 (queue active)"},
		{"warning", "tab\there ctl\x01x \xc3\xa9 end"},
		{"error", "e"},
	}
	l, err := maillog.New(maillog.Options{SyslogName: "postfix", Program: "qmgr", File: ours, Hostname: "vm2.example.ops"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	levels := map[string]maillog.Level{"info": maillog.LevelInfo, "warning": maillog.LevelWarning, "error": maillog.LevelError}
	for _, r := range records {
		res := oracle.Run(o.Command("postlog", "-c", dir, "-t", "postfix/qmgr", "-p", r.level, r.text), "")
		if res.Code != 0 {
			t.Fatalf("postlog: %d %s", res.Code, res.Stderr)
		}
		l.Log(levels[r.level], "%s", r.text)
	}
	want, got := maillogShape(t, theirs), maillogShape(t, ours)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("postdove:\n%s\npostfix:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	fo, _ := os.Stat(ours)
	ft, _ := os.Stat(theirs)
	if fo.Mode() != ft.Mode() {
		t.Fatalf("new log file mode %v, postfix %v", fo.Mode(), ft.Mode())
	}
}
