package compat

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/maillog"
	"postdove/pkg/postconf"
	"postdove/pkg/queue"
	"postdove/pkg/smtpd"
)

// smtpdTranscript runs one SMTP session on addr: each command is sent
// after the previous reply; it returns every reply line. A command made
// with smtpdPipelined is several sent in one write, one reply read for
// each.
func smtpdTranscript(t *testing.T, addr string, cmds []string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	var b strings.Builder
	readReply := func() bool {
		for {
			l, err := r.ReadString('\n')
			b.WriteString(l)
			if err != nil {
				return false
			}
			if len(l) < 4 || l[3] != '-' {
				return true
			}
		}
	}
	if !readReply() {
		return b.String()
	}
session:
	for _, cmd := range cmds {
		group := strings.Split(cmd, pipelineSep)
		for _, line := range group {
			b.WriteString("> " + line + "\n")
		}
		if _, err := io.WriteString(c, strings.Join(group, "\r\n")+"\r\n"); err != nil {
			break
		}
		for range group {
			if !readReply() {
				break session
			}
		}
	}
	return regexp.MustCompile(`queued as [0-9A-Za-z]+`).ReplaceAllString(b.String(), "queued as ID")
}

const pipelineSep = "\x00"

// smtpdPipelined is one smtpdTranscript command that sends cmds at once.
func smtpdPipelined(cmds ...string) string { return strings.Join(cmds, pipelineSep) }

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSmtpdReplies holds postdove's smtpd against Postfix 3.7's with the
// same main.cf: the replies of sessions that exercise the commands, the
// limits, the restrictions and the classic open-relay tricks, and the
// maillog lines they leave. (Postfix opens the queue file at the first
// accepted RCPT and logs "ID: client=" then; postdove's smtpd does at
// DATA, so no session here accepts a recipient without sending mail.)
func TestSmtpdReplies(t *testing.T) {
	oracle.Get(t)
	pfAddr := freePort(t)
	mainCF := "inet_interfaces = 127.0.0.1\nmynetworks = 10.0.0.0/8\nmessage_size_limit = 2000\n" +
		"smtpd_recipient_limit = 3\nsmtpd_error_sleep_time = 0\ndefer_transports = smtp, local, relay\n" +
		"smtpd_sender_restrictions = reject_non_fqdn_sender, check_sender_access inline:{bad@b.example=REJECT}\n" +
		"smtpd_recipient_restrictions = check_recipient_access inline:{blocked@mail.example.test=REJECT, {text@mail.example.test=550 5.1.2 go away}, dd@mail.example.test=DEFER, mail.example.test=DUNNO}\n"
	inst := oracle.StartPostfix(t, oracle.PostfixOptions{
		MainCF:   mainCF,
		MasterCF: pfAddr + " inet n - n - - smtpd\n",
	})

	cfg, err := postconf.Load(inst.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue")
	logf := filepath.Join(dir, "maillog")
	cfg.Set("queue_directory", qdir)
	if err := queue.Setup(qdir, "root", "root"); err != nil {
		t.Fatal(err)
	}
	log, err := maillog.New(maillog.Options{SyslogName: "postfix", Program: "smtpd", File: logf, Hostname: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	srv := smtpd.New(cfg, queue.New(qdir), log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	// Postfix may take a moment to bind its listener after start; both
	// servers get the same first probe session.
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", pfAddr); err == nil {
			c.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
	}

	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 3000) + "\r\n."
	sessions := [][]string{
		{"EHLO client.example", "HELO x", "FOO", "VRFY root", "VRFY", "ETRN foo", "NOOP", "RSET x",
			"MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME", "RCPT TO:<root@mail.example.test> NOTIFY=NEVER",
			"DATA", "Subject: t\r\n\r\nhello\r\n..dot\r\n.", "MAIL FROM:<>", "MAIL FROM:<a@b>", "QUIT"},
		{"MAIL FROM:<a@b.example>", "EHLO client.example", "RCPT TO:<root>", "MAIL FROM:<a@b.example>",
			"RCPT TO:<x@elsewhere.example>", "RCPT TO:<x%elsewhere.example@mail.example.test>",
			"RCPT TO:<\"x@elsewhere.example\"@mail.example.test>", "RCPT TO:<elsewhere.example!x@mail.example.test>",
			"RCPT TO:<@mail.example.test:x@elsewhere.example>", "RCPT TO:<X@ELSEWHERE.EXAMPLE>",
			"RCPT TO:<nosuchuser@mail.example.test>", "QUIT"},
		{"HELO client.example", "MAIL FROM:<a@b.example> SIZE=5000", "MAIL FROM:<a@b.example> FOO=bar",
			"MAIL FROM:<a@b.example>", "RCPT TO:<blocked@mail.example.test>", "RCPT TO:<text@mail.example.test>",
			"RCPT TO:<dd@mail.example.test>", "RCPT TO:<root@mail.example.test>", "RCPT TO:<root>",
			"RCPT TO:<postmaster>", "RCPT TO:<root@mail.example.test>", "DATA", big, "RSET",
			"MAIL FROM:<bad@b.example>", "RCPT TO:<root@mail.example.test>", "QUIT"},
		{"HELO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<root@MAIL.example.test>", "DATA",
			"Subject: y\r\n\r\nhi\r\n.", "BDAT 3", "QUIT"},
		{"EHLO c.example", "DATA", "DATA", "DATA", "MAIL FROM:<a@b.example>", "NOOP"},
		{"EHLO c.example", "GET / HTTP/1.0", "NOOP"},
	}
	for i, cmds := range sessions {
		want := smtpdTranscript(t, pfAddr, cmds)
		got := smtpdTranscript(t, ln.Addr().String(), cmds)
		if got != want {
			t.Errorf("session %d:\npostdove:\n%s\npostfix:\n%s", i, got, want)
		}
	}

	// The maillog lines, without time, pid and queue IDs.
	norm := func(path string) string {
		time.Sleep(200 * time.Millisecond)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		id := regexp.MustCompile(`\b[0-9A-F]{10,}\b`)
		for _, l := range strings.Split(string(b), "\n") {
			_, rest, ok := strings.Cut(l, "postfix/smtpd[")
			if !ok || strings.Contains(l, "overriding earlier entry") {
				continue
			}
			_, rest, _ = strings.Cut(rest, "]: ")
			out = append(out, id.ReplaceAllString(rest, "ID"))
		}
		// Postfix's processes interleave their lines: compare them sorted.
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	if got, want := norm(logf), norm(inst.Maillog); got != want {
		t.Errorf("maillog:\npostdove:\n%s\npostfix:\n%s", got, want)
	}
}
