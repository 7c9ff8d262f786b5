package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// ldaConf writes a dovecot.conf for lab 4b's Investigation 2C
// (mail_location = maildir:~/Maildir, logging to syslog) in a folder
// everyone may read, and returns its path.
func ldaConf(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/tmp", "pdtlda-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	conf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte("mail_location = maildir:~/Maildir\nhostname = vm2.example.ops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// TestLab4bDovecotLDA is lab 4b's Investigation 2C under rsyslogd:
// mailbox_command = dovecot-lda -f "$SENDER" -a "$RECIPIENT" delivers a
// user's mail to ~/Maildir/new/, owned by the user; root's mail, run as
// default_privs, fails for permissions, the maillog says why in Dovecot's
// words and local defers it; after "root: user" and newaliases root's mail
// reaches the user. With postmaster_address empty, the lab's
// troubleshooting note's "Invalid settings" error is in the maillog.
func TestLab4bDovecotLDA(t *testing.T) {
	conf := ldaConf(t)
	lda := oracle.Postdove(t, "dovecot-lda")
	l := labSyslog(t, `mailbox_command = `+lda+` -c `+conf+` -f "$SENDER" -a "$RECIPIENT"`+"\n", "")
	if l == nil {
		return
	}
	first := l.user("pdtfirst")
	if res := l.mail("hello from vm2\n", "-s", "Lab4b - LDA", first.Name); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	newDir := filepath.Join(first.Home, "Maildir", "new")
	l.waitFor("a message in "+newDir, func() bool { return oracle.CountFiles(newDir) == 1 })
	es, _ := os.ReadDir(newDir)
	fi, err := os.Stat(filepath.Join(newDir, es[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != first.UID || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: owner %d mode %v, want %d and 0600", es[0].Name(), st.Uid, fi.Mode().Perm(), first.UID)
	}
	if b, _ := os.ReadFile(filepath.Join(newDir, es[0].Name())); !strings.Contains(string(b), "\nhello from vm2\n") ||
		!strings.HasPrefix(string(b), "Return-Path: <root@vm2.example.ops>\n") {
		t.Errorf("delivered message:\n%s", b)
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	q := regexp.QuoteMeta
	l.waitLog(`(?m)^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ` + q(host) + ` dovecot: lda\(` + first.Name + `\)<\d+><[A-Za-z0-9+/]{22}>: msgid=<[^>]+@vm2\.example\.ops>: saved mail to INBOX$`)
	l.waitLog(`postfix/local\[\d+\]: [0-9A-F]+: to=<` + first.Name + `@vm2\.example\.ops>, orig_to=<` + first.Name + `>, .*dsn=2\.0\.0, status=sent \(delivered to command: ` + q(lda) + ` `)

	// root's mail runs as nobody with HOME=/root: Dovecot's
	// permission error, and local defers for EX_TEMPFAIL.
	var rootStat syscall.Stat_t
	syscall.Stat("/root", &rootStat)
	if res := l.mail("for root\n", "-s", "to root", "root"); res.Code != 0 {
		t.Fatalf("mail root: exit %d: %s", res.Code, res.Stderr)
	}
	if rootStat.Mode&0o001 == 0 {
		l.waitLog(`dovecot: lda\(root\)<\d+><[^>]+>: Error: chdir\(/root/\) failed: Permission denied \(euid=65534\(nobody\) egid=65534\(nogroup\) missing \+x perm: /root, dir owned by 0:0 mode=0` + fmt.Sprintf("%o", rootStat.Mode&0o777) + `\)`)
	}
	l.waitLog(`dovecot: lda\(root\)<\d+><[^>]+>: msgid=<[^>]+>: save failed to open mailbox INBOX: .*Permission denied \(euid=65534\(nobody\) egid=65534\(nogroup\) missing \+[xw] perm: /root`)
	l.waitLog(`postfix/local\[\d+\]: [0-9A-F]+: to=<root@vm2\.example\.ops>, orig_to=<root>, .*dsn=4\.3\.0, status=deferred \(temporary failure\)`)

	// root: first, and newaliases.
	if err := os.WriteFile(l.Aliases, []byte("root: "+first.Name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.must(l.binCmd("newaliases"), "")
	if res := l.mail("for root again\n", "-s", "to root", "root"); res.Code != 0 {
		t.Fatalf("mail root: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitFor("root's mail in "+newDir, func() bool {
		es, _ := os.ReadDir(newDir)
		for _, e := range es {
			if b, _ := os.ReadFile(filepath.Join(newDir, e.Name())); strings.Contains(string(b), "\nfor root again\n") {
				return true
			}
		}
		return false
	})

	// The lab's troubleshooting note: no postmaster_address, and a host
	// name without a domain (CentOS 7's Dovecot 2.2 then has no address).
	if err := os.WriteFile(conf, []byte("mail_location = maildir:~/Maildir\nhostname = vm2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := l.mail("no postmaster\n", "-s", "pm", first.Name); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitLog(`postfix/local\[\d+\]: [0-9A-F]+: to=<` + first.Name + `@vm2\.example\.ops>, orig_to=<` + first.Name + `>, .*dsn=4\.3\.0, status=deferred \(temporary failure\. Command output: lda\(\d+\): Fatal: Error reading configuration: Invalid settings: postmaster_address setting not given \)`)
	// The note's fix: postmaster_address in dovecot.conf; the deferred
	// mail is then delivered.
	if err := os.WriteFile(conf, []byte("mail_location = maildir:~/Maildir\nhostname = vm2\npostmaster_address = postmaster@example.ops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sent := strings.Count(l.ReadMaillog(), "status=sent (delivered to command: ")
	l.waitFor("the deferred mail to be delivered after the fix", func() bool {
		oracle.Run(l.Command("postqueue", "-f"), "")
		time.Sleep(200 * time.Millisecond)
		return strings.Count(l.ReadMaillog(), "status=sent (delivered to command: ") > sent
	})
}

// TestLab4bHomeMailbox: home_mailbox = mailboxes/ with no mailbox_command
// delivers to ~/mailboxes/ (the course's later assignment).
func TestLab4bHomeMailbox(t *testing.T) {
	l := labSyslog(t, "home_mailbox = mailboxes/\n", "")
	if l == nil {
		return
	}
	first := l.user("pdtfirst")
	if res := l.mail("to mailboxes\n", "-s", "home_mailbox", first.Name); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	dir := filepath.Join(first.Home, "mailboxes", "new")
	l.waitFor("a message in "+dir, func() bool { return oracle.CountFiles(dir) == 1 })
	l.waitLog(`postfix/local\[\d+\]: [0-9A-F]+: to=<` + first.Name + `@vm2\.example\.ops>, .*status=sent \(delivered to maildir\)`)
}
