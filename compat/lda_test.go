package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// ldaSide is one mail system of TestLDASideBySide: Debian's Postfix
// running Debian's dovecot-lda, or postdove running its own.
type ldaSide struct {
	inst *oracle.Instance
	log  string // the LDA's log_path
	user oracle.User
}

// startLDASide starts a mail system whose mailbox_command is the LDA
// (lab 4b: -f "$SENDER" -a "$RECIPIENT"), with a dovecot.conf of
// mail_location = maildir:~/Maildir logging to its own file.
func startLDASide(t *testing.T, system string) *ldaSide {
	o := oracle.Get(t)
	dir, err := os.MkdirTemp("/var/tmp", "pdtldacmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	s := &ldaSide{log: filepath.Join(dir, "lda.log")}
	conf := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(s.log, nil, 0o666)
	os.Chmod(s.log, 0o666)
	os.Mkdir(filepath.Join(dir, "run"), 0o777)
	os.Chmod(filepath.Join(dir, "run"), 0o777)
	cfg := fmt.Sprintf("base_dir = %s/run\ndefault_login_user = nobody\ndefault_internal_user = nobody\n"+
		"hostname = lda.example.test\nmail_location = maildir:~/Maildir\nlog_path = %s\nssl = no\n", dir, s.log)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var lda string
	if system == "postfix" {
		real := filepath.Join(o.Root, "usr/lib/dovecot/dovecot-lda")
		if _, err := os.Stat(real); err != nil {
			t.Skipf("no dovecot-lda in the oracle: %v", err)
		}
		// Installed, dovecot-lda re-executes itself through doveconf;
		// the oracle's must be run through it explicitly.
		lda = filepath.Join(dir, "dovecot-lda")
		script := fmt.Sprintf("#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s -c %s -e %s \"$@\"\n",
			filepath.Join(o.Root, "usr/lib/dovecot"), filepath.Join(o.Root, "usr/bin/doveconf"), conf, real)
		if err := os.WriteFile(lda, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		lda = oracle.Postdove(t, "dovecot-lda") + " -c " + conf
	}
	opt := oracle.PostfixOptions{
		Hostname: "vm3.example.ops",
		MainCF:   `mailbox_command = ` + lda + ` -f "$SENDER" -a "$RECIPIENT"` + "\n",
		Aliases:  "postmaster: root\n",
	}
	if system == "postfix" {
		s.inst = oracle.StartPostfix(t, opt)
	} else {
		s.inst = oracle.StartPostdove(t, opt)
	}
	s.user = oracle.AddUser(t, s.inst.HomeDir, "pdtfirst")
	return s
}

var (
	ldaLogPrefix = regexp.MustCompile(`(?m)^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d lda\(([^)]*)\)<\d+><[A-Za-z0-9+/]{22}>: `)
	ldaCommand   = regexp.MustCompile(`\(delivered to command: \S+ (-c \S+ )?-f`)
	localLine    = regexp.MustCompile(`postfix/local\[\d+\]: [0-9A-F]+: (to=<[^>]*>, orig_to=<[^>]*>, relay=local), delay=[\d.]+, delays=[\d./]+, (dsn=.*)`)
)

// TestLDASideBySide mails a user and root on Debian's Postfix with
// Debian's dovecot-lda and on postdove with its own: the user's mail
// lands in ~/Maildir/new on both; root's, run as default_privs, fails
// with the same Dovecot log lines and postfix/local defers it with the
// same words.
func TestLDASideBySide(t *testing.T) {
	var local [2][]string
	var logs [2]string
	for i, system := range []string{"postfix", "postdove"} {
		s := startLDASide(t, system)
		for _, rcpt := range []string{s.user.Name, "root"} {
			if res := oracle.Run(s.inst.Sendmail("-f", "root@vm3.example.ops", rcpt), "Subject: lda\nMessage-ID: <cmp@example.ops>\n\nbody\n"); res.Code != 0 {
				t.Fatalf("%s sendmail %s: exit %d: %s", system, rcpt, res.Code, res.Stderr)
			}
			deadline := time.Now().Add(20 * time.Second)
			want := "to=<" + rcpt + "@vm3.example.ops>"
			for !strings.Contains(s.inst.ReadMaillog(), want) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
		for _, m := range localLine.FindAllStringSubmatch(s.inst.ReadMaillog(), -1) {
			line := strings.ReplaceAll(m[1]+", "+m[2], s.user.Name, "USER")
			local[i] = append(local[i], ldaCommand.ReplaceAllString(line, "(delivered to command: LDA -f"))
		}
		if n := oracle.CountFiles(s.user.Maildir()); n != 1 {
			t.Errorf("%s: %d messages in %s, want 1", system, n, s.user.Maildir())
		}
		b, _ := os.ReadFile(s.log)
		l := ldaLogPrefix.ReplaceAllString(string(b), "lda($1): ")
		logs[i] = strings.ReplaceAll(l, s.user.Name, "USER")
	}
	if strings.Join(local[0], "\n") != strings.Join(local[1], "\n") || len(local[0]) != 2 {
		t.Errorf("postfix/local lines differ:\nPostfix:  %q\npostdove: %q", local[0], local[1])
	}
	if logs[0] != logs[1] {
		t.Errorf("dovecot-lda log lines differ:\nDovecot:  %s\npostdove: %s", logs[0], logs[1])
	}
}
