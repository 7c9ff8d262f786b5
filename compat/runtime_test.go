package compat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// runtimeMaildirCF makes local(8) deliver to ~/Maildir/.
const runtimeMaildirCF = "home_mailbox = Maildir/\n"

// runtimeSend submits one message with the instance's sendmail as root.
func runtimeSend(t *testing.T, inst *oracle.Instance, body string, args ...string) {
	t.Helper()
	res := oracle.Run(inst.Sendmail(args...), body)
	if res.Code != 0 {
		t.Fatalf("%s sendmail %v: exit %d: %s%s", inst.System, args, res.Code, res.Stdout, res.Stderr)
	}
}

// runtimeWaitLog polls the maillog until it has a line containing want.
func runtimeWaitLog(t *testing.T, inst *oracle.Instance, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		log := inst.ReadMaillog()
		if strings.Contains(log, want) || time.Now().After(deadline) {
			return log
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRuntimePostfixDeliversToMaildir proves the live oracle works: the
// real Postfix, started privately, takes a message from its sendmail and
// its local(8) writes it to the user's ~/Maildir/new, logging each step.
func TestRuntimePostfixDeliversToMaildir(t *testing.T) {
	inst := oracle.StartPostfix(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF})
	u := oracle.AddUser(t, inst.HomeDir, "pfrt")
	runtimeSend(t, inst, "Subject: runtime\n\nhello from the oracle\n", u.Name)
	if n := oracle.WaitFiles(u.Maildir(), 1, 20*time.Second); n != 1 {
		t.Fatalf("%s: %d files after 20s, want 1\nmaillog:\n%s", u.Maildir(), n, inst.ReadMaillog())
	}
	entries, _ := os.ReadDir(u.Maildir())
	b, err := os.ReadFile(filepath.Join(u.Maildir(), entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "hello from the oracle") || !strings.Contains(string(b), "Delivered-To: "+u.Name+"@mail.example.test") {
		t.Errorf("delivered message lacks body or Delivered-To:\n%s", b)
	}
	log := runtimeWaitLog(t, inst, ": removed")
	for _, want := range []string{"postfix/pickup[", "postfix/cleanup[", "postfix/qmgr[", "postfix/local[", "status=sent (delivered to maildir)"} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}
}

// TestRuntimePostdoveDeliversToMaildir is the same run with postdove.
func TestRuntimePostdoveDeliversToMaildir(t *testing.T) {
	inst := oracle.StartPostdove(t, oracle.PostfixOptions{MainCF: runtimeMaildirCF})
	u := oracle.AddUser(t, inst.HomeDir, "pdrt")
	runtimeSend(t, inst, "Subject: runtime\n\nhello from postdove\n", u.Name)
	if n := oracle.WaitFiles(u.Maildir(), 1, 20*time.Second); n != 1 {
		t.Fatalf("%s: %d files after 20s, want 1\nmaillog:\n%s", u.Maildir(), n, inst.ReadMaillog())
	}
	log := runtimeWaitLog(t, inst, ": removed")
	for _, want := range []string{"postfix/pickup[", "postfix/cleanup[", "postfix/qmgr[", "postfix/local[", "status=sent (delivered to maildir)"} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}
}
