package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"postdove/compat/oracle"
)

// Lab 4a, investigation 1: local mail with `mail` (s-nail), read back as
// the user, forged senders, bounces, aliases, mailbox_command, the maillog
// and the postfix command's control of the system.

func TestLab4aSendAndRead(t *testing.T) {
	l := labSyslog(t, "", "")
	if l == nil {
		return
	}
	alice := l.user("pdtalice")
	res := l.mail("Hello Alice, this is test one.\n.\n", "-s", "Lab4a - Local - Test1", alice.Name)
	if res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	box := l.waitMbox(alice.Name, "Hello Alice, this is test one.")
	for _, want := range []string{"From root@vm2.example.ops ", "\nSubject: Lab4a - Local - Test1\n",
		"\nFrom: root <root@vm2.example.ops>\n", "\nReturn-Path: <root@vm2.example.ops>\n",
		"\nDelivered-To: " + alice.Name + "@vm2.example.ops\n"} {
		if !strings.Contains(box, want) {
			t.Errorf("mailbox lacks %q:\n%s", want, box)
		}
	}
	if st, err := os.Stat(filepath.Join(l.SpoolDir, alice.Name)); err != nil ||
		st.Sys().(*syscall.Stat_t).Uid != uint32(alice.UID) || st.Mode().Perm() != 0o600 {
		t.Errorf("spool file not alice's own 0600: %v %v", st.Mode(), err)
	}

	// alice reads it with mail: p 1, then q moves it to ~/mbox.
	cmd := exec.Command("s-nail", "-N", "-:/", "-Sv15-compat")
	asUser(cmd, alice, "MAIL="+filepath.Join(l.SpoolDir, alice.Name))
	res = oracle.Run(cmd, "p 1\nq\n")
	if res.Code != 0 || !strings.Contains(res.Stdout, "Hello Alice, this is test one.") ||
		!strings.Contains(res.Stdout, "Lab4a - Local - Test1") {
		t.Fatalf("s-nail as alice: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if box := l.mbox(alice.Name); box != "" {
		t.Errorf("spool not emptied after q:\n%s", box)
	}
	saved, err := os.ReadFile(filepath.Join(alice.Home, "mbox"))
	if err != nil || !strings.Contains(string(saved), "Hello Alice, this is test one.") {
		t.Errorf("~/mbox: %v\n%s", err, saved)
	}
}

func TestLab4aForgedFrom(t *testing.T) {
	l := labSyslog(t, "", "")
	if l == nil {
		return
	}
	alice := l.user("pdtalice")
	res := l.mail("Pay now.\n", "-r", "someone@hacker.com (Canadian Revenue Agency)", "-s", "Tax refund", alice.Name)
	if res.Code != 0 {
		t.Fatalf("mail -r: exit %d: %s", res.Code, res.Stderr)
	}
	box := l.waitMbox(alice.Name, "Pay now.")
	// s-nail writes the -r address as From: (comment) <address>.
	if !regexp.MustCompile(`\nFrom: .*someone@hacker\.com.*\n`).MatchString(box) ||
		!strings.Contains(box, "(Canadian Revenue Agency)") ||
		!strings.HasPrefix(box, "From someone@hacker.com ") ||
		!strings.Contains(box, "\nReturn-Path: <someone@hacker.com>\n") {
		t.Errorf("forged sender not shown:\n%s", box)
	}
}

func TestLab4aUnknownUserBounces(t *testing.T) {
	l := labSyslog(t, "", "")
	if l == nil {
		return
	}
	alice := l.user("pdtalice")
	l.setAliases("root: " + alice.Name + "\n")
	if res := l.mail("to nobody\n", "-s", "lost", "pdtnosuchuser"); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	box := l.waitMbox(alice.Name, "Status: 5.1.1")
	for _, want := range []string{"From MAILER-DAEMON ", "\nFrom: MAILER-DAEMON@vm2.example.ops (Mail Delivery System)\n",
		"\nSubject: Undelivered Mail Returned to Sender\n", "\nTo: root@vm2.example.ops\n",
		"Content-Type: multipart/report; report-type=delivery-status;",
		"\nFinal-Recipient: rfc822; pdtnosuchuser@vm2.example.ops\n", "\nAction: failed\n",
		"\nDiagnostic-Code: X-Postfix; unknown user: \"pdtnosuchuser\"\n", "\nSubject: lost\n", "\nto nobody\n"} {
		if !strings.Contains(box, want) {
			t.Errorf("bounce lacks %q:\n%s", want, box)
		}
	}
	l.waitLog(`postfix/local\[\d+\]: [0-9A-F]+: to=<pdtnosuchuser@vm2\.example\.ops>, orig_to=<pdtnosuchuser>, relay=local, .*dsn=5\.1\.1, status=bounced \(unknown user: "pdtnosuchuser"\)`)
	l.waitLog(`postfix/bounce\[\d+\]: [0-9A-F]+: sender non-delivery notification: [0-9A-F]+`)
}

func TestLab4aAliases(t *testing.T) {
	l := labSyslog(t, "", "")
	if l == nil {
		return
	}
	alice, bob := l.user("pdtalice"), l.user("pdtbob")
	pipeOut, fileOut := filepath.Join(l.Out, "pipe.txt"), filepath.Join(l.Out, "file.txt")
	l.setAliases(fmt.Sprintf("root: %s\nsales: %s, %s\n# a comment\ncmd: \"|/bin/sh -c 'cat > %s'\"\ntofile: %s\n",
		alice.Name, alice.Name, bob.Name, pipeOut, fileOut))
	for _, rcpt := range []string{"root", "sales", "cmd", "tofile"} {
		if res := l.mail("body for "+rcpt+"\n", "-s", "to "+rcpt, rcpt); res.Code != 0 {
			t.Fatalf("mail %s: exit %d: %s", rcpt, res.Code, res.Stderr)
		}
	}
	l.waitMbox(alice.Name, "body for root")
	l.waitMbox(alice.Name, "body for sales")
	l.waitMbox(bob.Name, "body for sales")
	l.waitFor("the pipe alias to write "+pipeOut, func() bool {
		b, _ := os.ReadFile(pipeOut)
		return strings.Contains(string(b), "\nbody for cmd\n")
	})
	l.waitFor("the file alias to write "+fileOut, func() bool {
		b, _ := os.ReadFile(fileOut)
		return strings.HasPrefix(string(b), "From root@vm2.example.ops ") && strings.Contains(string(b), "\nbody for tofile\n")
	})
	if strings.Contains(l.mbox(bob.Name), "body for root") {
		t.Error("root's mail reached bob")
	}

	// newaliases rebuilds the table from the edited file.
	f, err := os.OpenFile(l.Aliases, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "support: %s\n", bob.Name)
	f.Close()
	l.must(l.binCmd("newaliases"), "")
	if res := l.mail("body for support\n", "-s", "to support", "support"); res.Code != 0 {
		t.Fatalf("mail support: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(bob.Name, "body for support")
}

func TestLab4aMailboxCommand(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "pdtmbcmd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	script := filepath.Join(dir, "record")
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o777)
	os.Chmod(out, 0o777|os.ModeSticky)
	body := "#!/bin/sh\ncat > /dev/null\n{ echo uid=$(id -u); env; } > " + out + "/$(id -un).env\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	l := labSyslog(t, "mailbox_command = "+script+"\nrecipient_delimiter = +\n", "")
	if l == nil {
		return
	}
	alice := l.user("pdtalice")
	// s-nail refuses local parts with '+': submit with sendmail.
	if res := l.sendmail("Subject: cmd\n\nrun the command\n", alice.Name+"+lab"); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	orig := l.waitLog(`postfix/local\[\d+\]: [0-9A-F]+: to=<` + alice.Name + `\+lab@vm2\.example\.ops>, orig_to=<([^>]*)>, .*status=sent \(delivered to command: ` + regexp.QuoteMeta(script) + `\)`)[1]
	env := readEnv(t, filepath.Join(out, alice.Name+".env"))
	want := map[string]string{
		"uid": fmt.Sprint(alice.UID), "SENDER": "root@vm2.example.ops",
		"RECIPIENT": alice.Name + "+lab@vm2.example.ops", "USER": alice.Name, "LOGNAME": alice.Name,
		"HOME": alice.Home, "SHELL": "/usr/sbin/nologin", "LOCAL": alice.Name + "+lab",
		"DOMAIN": "vm2.example.ops", "EXTENSION": "lab", "ORIGINAL_RECIPIENT": orig,
	}
	for k, v := range want {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("mailbox_command as alice: %s=%q (set %v), want %q", k, got, ok, v)
		}
	}
	if orig != alice.Name+"+lab" {
		t.Errorf("orig_to=<%s>, want the address as given", orig)
	}

	// root is not aliased: its mailbox_command runs as default_privs.
	if res := l.mail("for root\n", "-s", "cmd", "root"); res.Code != 0 {
		t.Fatalf("mail root: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitLog(`postfix/local\[\d+\]: [0-9A-F]+: to=<root@vm2\.example\.ops>, orig_to=<root>, .*status=sent \(delivered to command: `)
	env = readEnv(t, filepath.Join(out, "nobody.env"))
	if env["uid"] != "65534" || env["USER"] != "root" || env["RECIPIENT"] != "root@vm2.example.ops" {
		t.Errorf("mailbox_command for root: uid=%s USER=%s RECIPIENT=%s", env["uid"], env["USER"], env["RECIPIENT"])
	}
}

// readEnv parses NAME=value lines written by the recording script.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("mailbox_command did not record its environment: %v", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

// TestLab4aMaillog checks the maillog lines of one delivery, written by
// postdove itself to maillog_file (with myhostname, as postlogd does) and
// by rsyslogd from /dev/log (with the machine's name, as syslog does).
func TestLab4aMaillog(t *testing.T) { lab4aMaillog(t, labStart(t, "", ""), "vm2") }

func TestLab4aMaillogSyslog(t *testing.T) {
	if l := labSyslog(t, "", ""); l != nil {
		host, _ := os.Hostname()
		host, _, _ = strings.Cut(host, ".")
		lab4aMaillog(t, l, regexp.QuoteMeta(host))
	}
}

func lab4aMaillog(t *testing.T, l *lab, host string) {
	alice := l.user("pdtalice")
	if res := l.mail("log me\n", "-s", "log", alice.Name); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	id := l.waitLog(`postfix/pickup\[\d+\]: ([0-9A-F]{6,}): uid=0 from=<root>`)[1]
	a := regexp.QuoteMeta(alice.Name)
	for _, re := range []string{
		`postfix/cleanup\[\d+\]: ` + id + `: message-id=<[^>]+@vm2\.example\.ops>`,
		`postfix/qmgr\[\d+\]: ` + id + `: from=<root@vm2\.example\.ops>, size=\d+, nrcpt=1 \(queue active\)`,
		`postfix/local\[\d+\]: ` + id + `: to=<` + a + `@vm2\.example\.ops>, orig_to=<` + a + `>, relay=local, delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \(delivered to mailbox\)`,
		`postfix/qmgr\[\d+\]: ` + id + `: removed`,
	} {
		l.waitLog(`(?m)^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ` + host + ` ` + re + `$`)
	}
}

func TestLab4aMaildropWhileStopped(t *testing.T) {
	l := labSyslog(t, "", "")
	if l == nil {
		return
	}
	alice := l.user("pdtalice")
	l.must(l.Command("postfix", "stop"), "")
	l.waitFor("the master to stop", func() bool { return oracle.Run(l.Command("postfix", "status"), "").Code == 1 })
	if res := l.mail("queued while down\n", "-s", "waiting", alice.Name); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	if n := l.queueFiles("maildrop"); n != 1 {
		t.Fatalf("maildrop holds %d files, want 1", n)
	}
	res := oracle.Run(l.binCmd("mailq"), "")
	if res.Code != 0 || !regexp.MustCompile(`(?m)^[0-9A-F]+!? +\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d  root\n +`+regexp.QuoteMeta(alice.Name)+`\n`).MatchString(res.Stdout) ||
		!strings.HasPrefix(res.Stdout, "-Queue ID-") || !strings.Contains(res.Stdout, "-- 1 Kbytes in 1 Request.") &&
		!strings.Contains(res.Stdout, "-- 0 Kbytes in 1 Request.") {
		t.Errorf("mailq: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}
	if l.mbox(alice.Name) != "" {
		t.Fatal("delivered while the system was stopped")
	}
	l.must(l.Command("postfix", "start"), "")
	l.waitMbox(alice.Name, "queued while down")
	l.waitFor("maildrop to empty", func() bool { return l.queueFiles("maildrop") == 0 })
}

func TestLab4aPostfixControl(t *testing.T) {
	l := labSyslog(t, "", "")
	if l == nil {
		return
	}
	res := oracle.Run(l.Command("postfix", "status"), "")
	if res.Code != 0 || !regexp.MustCompile(`^postfix/postfix-script: the Postfix mail system is running: PID: \d+\n$`).MatchString(res.Stderr) {
		t.Errorf("status running: exit %d %q", res.Code, res.Stderr)
	}
	res = oracle.Run(l.Command("postfix", "start"), "")
	if res.Code != 1 || !strings.Contains(res.Stderr, "postfix/postfix-script: fatal: the Postfix mail system is already running\n") {
		t.Errorf("second start: exit %d %q", res.Code, res.Stderr)
	}

	// nobody may not run it.
	cmd := l.Command("postfix", "start")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	res = oracle.Run(cmd, "")
	if res.Code != 1 || res.Stderr != "postfix: error: to submit mail, use the Postfix sendmail command\n"+
		"postfix: fatal: the postfix command is reserved for the superuser\n" {
		t.Errorf("start as nobody: exit %d %q", res.Code, res.Stderr)
	}

	// reload keeps deferred mail: a mailbox_command that fails with
	// EX_TEMPFAIL keeps a message in the queue.
	alice := l.user("pdtalice")
	tempfail := filepath.Join(l.Out, "tempfail")
	if err := os.WriteFile(tempfail, []byte("#!/bin/sh\nexit 75\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(l.ConfigDir, "main.cf")
	b, _ := os.ReadFile(cf)
	os.WriteFile(cf, append(b, []byte("mailbox_command = "+tempfail+"\n")...), 0o644)
	l.must(l.Command("postfix", "reload"), "")
	l.waitLog(`postfix/master\[\d+\]: reload -- version \S+, configuration ` + regexp.QuoteMeta(l.ConfigDir))
	if res := l.mail("retry me\n", "-s", "deferred", alice.Name); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	id := l.waitLog(`postfix/local\[\d+\]: ([0-9A-F]+): to=<` + alice.Name + `@vm2\.example\.ops>, .*dsn=4\.3\.0, status=deferred \(temporary failure`)[1]
	l.waitFor("the message in deferred/", func() bool {
		_, err := os.Stat(filepath.Join(l.QueueDir, "deferred", id[:1], id))
		return err == nil
	})
	pid := oracle.Run(l.Command("postfix", "status"), "").Stderr
	l.must(l.Command("postfix", "reload"), "")
	if got := oracle.Run(l.Command("postfix", "status"), "").Stderr; got != pid {
		t.Errorf("reload restarted the master: %q then %q", pid, got)
	}
	res = oracle.Run(l.binCmd("mailq"), "")
	if !strings.Contains(res.Stdout, id) || !strings.Contains(res.Stdout, "temporary failure") {
		t.Errorf("mailq after reload lost %s:\n%s%s", id, res.Stdout, res.Stderr)
	}

	l.must(l.Command("postfix", "stop"), "")
	l.waitFor("the master to stop", func() bool {
		res = oracle.Run(l.Command("postfix", "status"), "")
		return res.Code == 1
	})
	if res.Stderr != "postfix/postfix-script: the Postfix mail system is not running\n" {
		t.Errorf("status stopped: %q", res.Stderr)
	}
	if _, err := os.Stat(filepath.Join(l.QueueDir, "deferred", id[:1], id)); err != nil {
		t.Errorf("deferred mail lost across reload and stop: %v", err)
	}
}

func TestLab4aFreshQueueDirectories(t *testing.T) {
	l := labSyslog(t, "", "")
	if l == nil {
		return
	}
	l.must(l.Command("postfix", "stop"), "")
	l.waitFor("the master to stop", func() bool { return oracle.Run(l.Command("postfix", "status"), "").Code == 1 })
	if err := os.RemoveAll(l.QueueDir); err != nil {
		t.Fatal(err)
	}
	l.must(l.Command("postfix", "start"), "")
	want := map[string]string{
		"active": "postfix:root:0700", "bounce": "postfix:root:0700", "corrupt": "postfix:root:0700",
		"defer": "postfix:root:0700", "deferred": "postfix:root:0700", "flush": "postfix:root:0700",
		"hold": "postfix:root:0700", "incoming": "postfix:root:0700", "private": "postfix:root:0700",
		"saved": "postfix:root:0700", "trace": "postfix:root:0700", "maildrop": "postfix:postdrop:0730",
		"public": "postfix:postdrop:0710", "pid": "root:root:0755",
	}
	for dir, w := range want {
		st, err := os.Stat(filepath.Join(l.QueueDir, dir))
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		sys := st.Sys().(*syscall.Stat_t)
		got := fmt.Sprintf("%s:%s:%04o", userName(sys.Uid), groupName(sys.Gid), st.Mode().Perm())
		if got != w || !st.IsDir() {
			t.Errorf("%s: %s, want %s", dir, got, w)
		}
	}
}

func userName(uid uint32) string {
	out, _ := exec.Command("id", "-nu", fmt.Sprint(uid)).Output()
	return strings.TrimSpace(string(out))
}

func groupName(gid uint32) string {
	out, _ := exec.Command("getent", "group", fmt.Sprint(gid)).Output()
	name, _, _ := strings.Cut(string(out), ":")
	return name
}
