package tests

import (
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"postdove/compat/oracle"
	"postdove/pkg/queue"
)

// badInputCase is one odd message given to sendmail on stdin.
type badInputCase struct {
	name string
	msg  string
}

// badInputEnd ends every accepted body, so that a delivery can be told
// complete.
const badInputEnd = "END-OF-TEST-MESSAGE\n"

// TestBadInputSendmail gives the same odd input to Postfix's sendmail and
// to ours: same exit code and message; what is accepted is delivered with
// the body Postfix delivers, and what is refused leaves nothing queued.
func TestBadInputSendmail(t *testing.T) {
	const limit = "message_size_limit = 10240000\n"
	l := labStart(t, limit, "")
	pf := oracle.StartPostfix(t, oracle.PostfixOptions{Hostname: "vm2.example.ops", MainCF: "mydomain = example.ops\n" + limit})
	u := l.user("pdtbad")

	longLine := strings.Repeat("0123456789abcdef", 65536) // 1 MB
	accepted := []badInputCase{
		{"no header/body split", "This has no header, only text.\nA second line.\n" + badInputEnd},
		{"NUL bytes", "Subject: nul\n\nbefore\x00after\n\x00\x00\n" + badInputEnd},
		{"1 MB line", "Subject: long line\n\n" + longLine + "\n" + badInputEnd},
		{"CRLF and binary junk", "Subject: junk\r\n\r\n\xff\xfe\x01\x02\r\nplain\r\n" + badInputEnd},
	}
	for _, c := range accepted {
		before, pfBefore := len(l.mbox(u.Name)), len(badInputMbox(pf, u.Name))
		ours, theirs := l.sendmail(c.msg, u.Name), oracle.Run(pf.Sendmail(u.Name), c.msg)
		if ours.Code != theirs.Code || ours.Stderr != theirs.Stderr {
			t.Errorf("%s: exit %d %q; Postfix: exit %d %q", c.name, ours.Code, ours.Stderr, theirs.Code, theirs.Stderr)
			continue
		}
		if ours.Code != 0 {
			t.Errorf("%s: refused by both: %q", c.name, ours.Stderr)
			continue
		}
		got := badInputNext(l, "our delivery of "+c.name, func() string { return l.mbox(u.Name) }, before)
		want := badInputNext(l, "Postfix's delivery of "+c.name, func() string { return badInputMbox(pf, u.Name) }, pfBefore)
		if got != want {
			t.Errorf("%s: delivered body differs from Postfix's:\nours   %.300q\nPostfix %.300q", c.name, got, want)
		}
	}
	if box := l.mbox(u.Name); !strings.Contains(box, "\n\n"+longLine+"\n"+badInputEnd) {
		t.Error("the 1 MB line did not arrive byte for byte")
	}

	refused := []badInputCase{
		{"50 MB body", "Subject: big\n\n" + strings.Repeat(strings.Repeat("x", 999)+"\n", 50*1024)},
		{"no recipient", ""},
	}
	for _, c := range refused {
		args := []string{u.Name}
		if c.name == "no recipient" {
			args = nil
		}
		ours, theirs := l.sendmail(c.msg, args...), oracle.Run(pf.Sendmail(args...), c.msg)
		// Postfix's postdrop may hit the file size limit first and add
		// warnings of its own: the fatal line is what must match.
		if ours.Code != 75 || ours.Code != theirs.Code || badInputFatal(ours.Stderr) != badInputFatal(theirs.Stderr) ||
			badInputFatal(ours.Stderr) == "" {
			t.Errorf("%s: exit %d %q; Postfix: exit %d %q", c.name, ours.Code, ours.Stderr, theirs.Code, theirs.Stderr)
		}
	}
	l.waitFor("maildrop and incoming to empty", func() bool {
		return l.queueFiles(queue.Maildrop) == 0 && l.queueFiles(queue.Incoming) == 0
	})
	if strings.Count(l.mbox(u.Name), "\nFrom ") != len(accepted)-1 {
		t.Errorf("mailbox holds other than the %d accepted messages", len(accepted))
	}
}

// badInputNext waits until the mailbox read holds a complete message
// after offset from, and returns that message's body.
func badInputNext(l *lab, what string, read func() string, from int) string {
	l.t.Helper()
	var body string
	l.waitFor(what, func() bool {
		box := read()
		if len(box) <= from || !strings.Contains(box[from:], badInputEnd) {
			return false
		}
		body = badInputBody(box[from:])
		return true
	})
	return body
}

// badInputFatal is the "sendmail: fatal: " line of stderr.
func badInputFatal(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "sendmail: fatal: ") {
			return line
		}
	}
	return ""
}

// badInputMbox reads a user's mailbox in the real Postfix's spool.
func badInputMbox(inst *oracle.Instance, name string) string {
	b, _ := os.ReadFile(filepath.Join(inst.SpoolDir, name))
	return string(b)
}

// badInputBody is the body of the first message in an mbox excerpt.
func badInputBody(box string) string {
	_, body, _ := strings.Cut(box, "\n\n")
	return body
}

// TestBadInputCorruptQueueFile plants junk in incoming/: it is moved to
// corrupt/ with a warning, and a good message after it is delivered.
func TestBadInputCorruptQueueFile(t *testing.T) {
	l := labStart(t, "", "")
	u := l.user("pdtbad")
	const id = "ABCDE12345"
	junk := filepath.Join(l.QueueDir, queue.Incoming, id)
	if err := os.WriteFile(junk, []byte("\x00\x01 this is not a queue file\n\xff\xfe"), 0o700); err != nil {
		t.Fatal(err)
	}
	pw, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pw.Uid)
	gid, _ := strconv.Atoi(pw.Gid)
	os.Chown(junk, uid, gid)
	os.Chmod(junk, 0o700)
	if res := l.sendmail("Subject: after junk\n\ngood message\n", u.Name); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(u.Name, "good message")
	l.waitFor("the junk to move to corrupt/", func() bool {
		_, err := os.Stat(filepath.Join(l.QueueDir, queue.Corrupt, id))
		return err == nil
	})
	if _, err := os.Stat(junk); err == nil {
		t.Error("junk still in incoming/")
	}
	l.waitLog(`postfix/qmgr\[\d+\]: warning: ` + id + `: .*corrupt.*`)
	if m := regexp.MustCompile(`(?m)^.*panic.*$`).FindString(l.ReadMaillog()); m != "" {
		t.Errorf("maillog: %s", m)
	}
}
