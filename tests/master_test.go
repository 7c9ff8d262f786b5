package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The master runs what master.cf lists: with pickup commented out, mail
// waits in maildrop; put back, `postfix reload` re-reads master.cf and the
// mail is delivered.
func TestMasterFollowsMasterCF(t *testing.T) {
	l := labStart(t, "", "")
	alice := l.user("pdtalice")
	mcf := filepath.Join(l.ConfigDir, "master.cf")
	orig, err := os.ReadFile(mcf)
	if err != nil {
		t.Fatal(err)
	}
	without := strings.Replace(string(orig), "\npickup ", "\n#pickup ", 1)
	if without == string(orig) {
		t.Fatal("no pickup entry in the instance's master.cf")
	}
	if err := os.WriteFile(mcf, []byte(without), 0644); err != nil {
		t.Fatal(err)
	}
	if res := l.must(l.binCmd("postfix", "reload"), ""); res.Code != 0 {
		t.Fatalf("reload: %+v", res)
	}
	time.Sleep(time.Second) // the old pickup is gone once reload has run
	if res := l.sendmail("Subject: waits\n\nin maildrop\n", alice.Name); res.Code != 0 {
		t.Fatalf("sendmail: %+v", res)
	}
	time.Sleep(2 * time.Second)
	if n := l.queueFiles("maildrop"); n != 1 {
		t.Fatalf("%d files in maildrop without a pickup service, want 1", n)
	}
	if strings.Contains(l.mbox(alice.Name), "in maildrop") {
		t.Fatal("delivered although master.cf has no pickup")
	}
	if err := os.WriteFile(mcf, orig, 0644); err != nil {
		t.Fatal(err)
	}
	if res := l.must(l.binCmd("postfix", "reload"), ""); res.Code != 0 {
		t.Fatalf("reload: %+v", res)
	}
	l.waitMbox(alice.Name, "in maildrop")
}

// A daemon's -o settings in master.cf apply to it alone, on top of main.cf.
func TestMasterServiceOverrides(t *testing.T) {
	l := labStart(t, "", "")
	alice := l.user("pdtalice")
	mcf := filepath.Join(l.ConfigDir, "master.cf")
	orig, _ := os.ReadFile(mcf)
	var out []string
	for _, line := range strings.Split(string(orig), "\n") {
		out = append(out, line)
		if strings.HasPrefix(line, "local ") {
			out = append(out, "  -o home_mailbox=Maildir/")
		}
	}
	if err := os.WriteFile(mcf, []byte(strings.Join(out, "\n")), 0644); err != nil {
		t.Fatal(err)
	}
	if res := l.must(l.binCmd("postfix", "reload"), ""); res.Code != 0 {
		t.Fatalf("reload: %+v", res)
	}
	time.Sleep(time.Second)
	if res := l.sendmail("Subject: md\n\nto maildir\n", alice.Name); res.Code != 0 {
		t.Fatalf("sendmail: %+v", res)
	}
	l.waitLog(`postfix/local\[\d+\]: [0-9A-F]+: to=<` + alice.Name + `@vm2\.example\.ops>.*status=sent \(delivered to maildir\)`)
	if files, err := os.ReadDir(filepath.Join(alice.Home, "Maildir", "new")); err != nil || len(files) != 1 {
		t.Errorf("~/Maildir/new: %d files, %v; want 1", len(files), err)
	}
}
