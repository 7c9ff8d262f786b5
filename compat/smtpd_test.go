package compat

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/maillog"
	"postdove/pkg/postcat"
	"postdove/pkg/postconf"
	"postdove/pkg/queue"
	"postdove/pkg/smtpd"
)

// smtpdTranscript runs one SMTP session on addr: each command is sent
// after the previous reply; it returns every reply line. A command made
// with smtpdPipelined is several sent in one write, one reply read for
// each.
func smtpdTranscript(t *testing.T, addr string, cmds []string) string {
	return smtpdSession(t, addr, false, cmds)
}

// smtpdSession is smtpdTranscript over TLS from the first byte when
// wrapper is set (smtps); a STARTTLS answered 220 starts TLS either way.
func smtpdSession(t *testing.T, addr string, wrapper bool, cmds []string) string {
	t.Helper()
	return smtpdSessionFrom(t, "", addr, wrapper, cmds)
}

// smtpdSessionFrom is smtpdSession from source address src (any when
// empty).
func smtpdSessionFrom(t *testing.T, src, addr string, wrapper bool, cmds []string) string {
	t.Helper()
	d := net.Dialer{}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	tlsConfig := &tls.Config{InsecureSkipVerify: true}
	var c net.Conn = raw
	if wrapper {
		c = tls.Client(raw, tlsConfig)
	}
	r := bufio.NewReader(c)
	var b strings.Builder
	last := ""
	readReply := func() bool {
		for {
			l, err := r.ReadString('\n')
			b.WriteString(l)
			if err != nil {
				return false
			}
			if len(l) < 4 || l[3] != '-' {
				last = l
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
		if strings.EqualFold(cmd, "STARTTLS") && strings.HasPrefix(last, "220 ") {
			c = tls.Client(raw, tlsConfig)
			r = bufio.NewReader(c)
		}
	}
	return regexp.MustCompile(`queued as [0-9A-Za-z]+`).ReplaceAllString(b.String(), "queued as ID")
}

const pipelineSep = "\x00"

// queueIDs and headerDates match what differs between two runs: queue IDs
// and the dates of Received headers.
var (
	queueIDs    = regexp.MustCompile(`\b[0-9A-F]{10,}\b`)
	headerDates = regexp.MustCompile(`[A-Z][a-z][a-z], [ 0-9]\d \w+ \d{4} \d\d:\d\d:\d\d [-+]\d{4} \(\w+\)`)
)

// regularFiles lists the regular files below dir, in lexical order.
func regularFiles(dir string) []string {
	var files []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	return files
}

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

// smtpdPair is the oracle's smtpd and postdove's, with the same main.cf,
// each on its own address of 127.0.0.1.
type smtpdPair struct {
	inst         *oracle.Instance
	pfAddr, addr string
	logf, qdir   string
	cfgDir       string
	from         string // the sessions' source address, when set
}

// startSmtpdPair starts Postfix 3.7's smtpd (master.cf: an inet service
// plus extraMaster) and postdove's with mainCF, and waits for both.
func startSmtpdPair(t *testing.T, mainCF, extraMaster string, setup ...func(*smtpd.Server)) *smtpdPair {
	t.Helper()
	oracle.Get(t)
	p := &smtpdPair{pfAddr: freePort(t)}
	p.inst = oracle.StartPostfix(t, oracle.PostfixOptions{
		MainCF:   "inet_interfaces = 127.0.0.1\n" + mainCF,
		MasterCF: p.pfAddr + " inet n - n - - smtpd\n" + extraMaster,
	})
	cfg, err := postconf.Load(p.inst.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p.qdir = filepath.Join(dir, "queue")
	p.logf = filepath.Join(dir, "maillog")
	p.cfgDir = p.inst.ConfigDir
	cfg.Set("queue_directory", p.qdir)
	if err := queue.Setup(p.qdir, "root", "root"); err != nil {
		t.Fatal(err)
	}
	log, err := maillog.New(maillog.Options{SyslogName: "postfix", Program: "smtpd", File: p.logf, Hostname: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	srv := smtpd.New(cfg, queue.New(p.qdir), log)
	for _, f := range setup {
		f(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	// Postfix may take a moment to bind its listener after start; both
	// servers get the same first probe session.
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", p.pfAddr); err == nil {
			c.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c, err := net.Dial("tcp", p.addr); err == nil {
		c.Close()
	}
	return p
}

// compare runs each session on both servers and reports different
// replies.
func (p *smtpdPair) compare(t *testing.T, sessions [][]string) {
	t.Helper()
	p.compareSessions(t, false, sessions)
}

// compareSessions is compare, over TLS from the start when wrapper is
// set.
func (p *smtpdPair) compareSessions(t *testing.T, wrapper bool, sessions [][]string) {
	t.Helper()
	for i, cmds := range sessions {
		want := smtpdSessionFrom(t, p.from, p.pfAddr, wrapper, cmds)
		got := smtpdSessionFrom(t, p.from, p.addr, wrapper, cmds)
		if got != want {
			t.Errorf("session %d:\npostdove:\n%s\npostfix:\n%s", i, got, want)
		}
	}
}

// compareLogs compares the smtpd maillog lines of both, without time,
// pid and queue IDs, sorted (Postfix's processes interleave theirs).
func (p *smtpdPair) compareLogs(t *testing.T) {
	t.Helper()
	norm := func(path string) string {
		time.Sleep(200 * time.Millisecond)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return smtpdLogLines(string(b))
	}
	if got, want := norm(p.logf), norm(p.inst.Maillog); got != want {
		t.Errorf("maillog:\npostdove:\n%s\npostfix:\n%s", got, want)
	}
}

// TestSmtpdReplies holds postdove's smtpd against Postfix 3.7's with the
// same main.cf: the replies of sessions that exercise the commands, the
// limits, the restrictions and the classic open-relay tricks, and the
// maillog lines they leave.
func TestSmtpdReplies(t *testing.T) {
	p := startSmtpdPair(t, "mynetworks = 10.0.0.0/8\nmessage_size_limit = 2000\n"+
		"smtpd_recipient_limit = 3\nsmtpd_error_sleep_time = 0\ndefer_transports = smtp, local, relay\n"+
		"smtpd_sender_restrictions = reject_non_fqdn_sender, check_sender_access inline:{bad@b.example=REJECT}\n"+
		"smtpd_recipient_restrictions = check_recipient_access inline:{blocked@mail.example.test=REJECT, {text@mail.example.test=550 5.1.2 go away}, dd@mail.example.test=DEFER, mail.example.test=DUNNO}\n", "")
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", 3000) + "\r\n."
	p.compare(t, [][]string{
		{"EHLO client.example", "HELO x", "FOO", "VRFY root", "VRFY", "ETRN foo", "NOOP", "RSET x",
			"MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME", "RCPT TO:<root@mail.example.test> NOTIFY=NEVER",
			"DATA", "Subject: t\r\n\r\nhello\r\n..dot\r\n.", "MAIL FROM:<>", "MAIL FROM:<a@b>", "QUIT"},
		{"MAIL FROM:<a@b.example>", "EHLO client.example", "RCPT TO:<root>", "MAIL FROM:<a@b.example>",
			"RCPT TO:<x@elsewhere.example>", "RCPT TO:<x%elsewhere.example@mail.example.test>",
			"RCPT TO:<\"x@elsewhere.example\"@mail.example.test>", "RCPT TO:<elsewhere.example!x@mail.example.test>",
			"RCPT TO:<@mail.example.test:x@elsewhere.example>", "RCPT TO:<X@ELSEWHERE.EXAMPLE>",
			"RCPT TO:<x%elsewhere.example>", "RCPT TO:<elsewhere.example!x>",
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
		{"MAIL FROM:<a@b.example>", "RCPT TO:<x@elsewhere.example>", "QUIT"},
		// Quoted local parts: the log has the internal form.
		{"HELO c.example", "MAIL FROM:<\"a b\"@b.example>", "RCPT TO:<\"x@elsewhere\">",
			"RCPT TO:<\"x y\"@elsewhere.example>", "RCPT TO:<\"a\\\"b\"@elsewhere.example>",
			"RCPT TO:<\"x\\\\y\"@elsewhere.example>", "RSET", "MAIL FROM:<\"q\"@b.example>", "RCPT TO:<\"x@elsewhere\">", "QUIT"},
	})
	p.compareLogs(t)
}

// TestSmtpdQueueFileTiming: as Postfix, the queue file (and its ID)
// exists from the first accepted RCPT on, so "ID: client=" is logged then
// and later rejects are "ID: reject:"; RSET, QUIT and a lost connection
// remove the unfinished file.
func TestSmtpdQueueFileTiming(t *testing.T) {
	p := startSmtpdPair(t, "mynetworks = 10.0.0.0/8\nsmtpd_error_sleep_time = 0\ndefer_transports = smtp, local, relay\n", "")
	p.compare(t, [][]string{
		{"HELO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<x@elsewhere.example>", "RCPT TO:<root@mail.example.test>",
			"RCPT TO:<y@elsewhere.example>", "RSET", "MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test>",
			"RCPT TO:<nosuchuser@mail.example.test>", "QUIT"},
		{"EHLO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test>", "DATA",
			"Subject: x\r\n\r\nhi\r\n.", "RCPT TO:<root@mail.example.test>", "QUIT"},
		// The connection is dropped with the queue file open.
		{"EHLO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test>"},
	})
	p.compareLogs(t)
	// No unfinished file is left behind (the one message is queued).
	time.Sleep(200 * time.Millisecond)
	left := regularFiles(filepath.Join(p.qdir, "incoming"))
	if len(left) != 1 || strings.HasPrefix(filepath.Base(left[0]), "tmp.") {
		t.Errorf("incoming queue holds %v, want the one queued message", left)
	}
}

// dsnSummary reduces a postcat listing (Postfix's or postdove's) to what
// smtpd records of the ESMTP parameters: ENVID, RET, BODY, SMTPUTF8, the
// Received protocol and each recipient's NOTIFY and ORCPT.
func dsnSummary(postcat string) string {
	var out []string
	var notify, orcpt string
	for _, l := range strings.Split(postcat, "\n") {
		l = strings.TrimPrefix(l, "named_attribute: ")
		k, v, _ := strings.Cut(l, "=")
		switch {
		case k == "envelope_id" || k == "envid":
			out = append(out, "envid="+v)
		case k == "ret_flags":
			out = append(out, "ret="+map[string]string{"1": "FULL", "2": "HDRS"}[v])
		case k == "ret":
			out = append(out, "ret="+v)
		case k == "encoding":
			out = append(out, "body="+map[string]string{"7bit": "7BIT", "8bit": "8BITMIME"}[v])
		case k == "body":
			out = append(out, "body="+v)
		case k == "smtputf8" || strings.HasPrefix(l, "message_size:") && strings.HasSuffix(l, " 1"):
			out = append(out, "smtputf8")
		case k == "notify_flags":
			notify = v
		case strings.HasPrefix(l, "dsn_notify_flags: "):
			notify = strings.TrimPrefix(l, "dsn_notify_flags: ")
		case k == "dsn_orig_rcpt":
			orcpt = v
		case strings.HasPrefix(l, "dsn_orig_rcpt: "):
			orcpt = strings.TrimPrefix(l, "dsn_orig_rcpt: ")
		case strings.HasPrefix(l, "sender: "):
			out = append(out, l)
		case strings.HasPrefix(l, "recipient: "):
			out = append(out, l+" notify="+notify+" orcpt="+orcpt)
			notify, orcpt = "", ""
		case strings.Contains(l, "(Postfix) with "):
			out = append(out, "received "+strings.Fields(strings.SplitN(l, " with ", 2)[1])[0])
		}
	}
	sort.Strings(out)
	return strings.Join(slices.Compact(out), "\n") // Postfix repeats the encoding after the content
}

// TestSmtpdESMTPParameters: MAIL's RET, ENVID, BODY and SMTPUTF8 and
// RCPT's NOTIFY and ORCPT reach the queue file as Postfix's smtpd records
// them (xtext decoded; ORCPT rfc822;address when the client gave none),
// compared through postcat on the messages both hold (HOLD).
func TestSmtpdESMTPParameters(t *testing.T) {
	p := startSmtpdPair(t, "mynetworks = 10.0.0.0/8\nsmtpd_error_sleep_time = 0\n"+
		"smtpd_sender_restrictions = check_sender_access inline:{a@b.example=HOLD, c@b.example=HOLD}\n", "")
	p.compare(t, [][]string{
		{"EHLO c.example", "MAIL FROM:<a@b.example> RET=HDRS ENVID=abc+2Bd BODY=8BITMIME SMTPUTF8",
			"RCPT TO:<root@mail.example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Hold+40x@mail.example.test",
			"RCPT TO:<root> NOTIFY=NEVER", "RCPT TO:<postmaster@mail.example.test>", "DATA", "Subject: x\r\n\r\nhi\r\n.",
			"MAIL FROM:<c@b.example> RET=FULL BODY=7BIT", "RCPT TO:<root@mail.example.test> NOTIFY=failure", "DATA", "Subject: y\r\n\r\nhi\r\n.",
			"QUIT"},
		{"EHLO c.example", "MAIL FROM:<a@b.example> RET=FOO", "MAIL FROM:<a@b.example> ENVID=a+zz", "MAIL FROM:<a@b.example> BODY=9BIT",
			"MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test> NOTIFY=NEVER,SUCCESS", "RCPT TO:<root@mail.example.test> NOTIFY=BOGUS",
			"RCPT TO:<root@mail.example.test> ORCPT=foo", "RCPT TO:<root@mail.example.test> ORCPT=rfc822;a+2", "QUIT"},
	})
	if got, want := p.held(t, dsnSummary, "\n--\n"); want == "" || got != want {
		t.Errorf("queue files:\npostdove:\n%s\npostfix:\n%s", got, want)
	}
}

// TestSmtpdBareNewline: smtpd_forbid_bare_newline as Postfix 3.7.11 has
// it (default no): normalize takes a bare LF as a line end but ends DATA
// only at <CR><LF>.<CR><LF>; reject answers 550 after the message, or to
// a command line and hangs up; clients in the exclusions ($mynetworks)
// are spared. The same sessions show the "improper command pipelining"
// log line.
func TestSmtpdBareNewline(t *testing.T) {
	sessions := [][]string{
		{"EHLO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test>", "DATA",
			"Subject: x\r\n\r\na\nb\r\n.", "NOOP\nNOOP", "QUIT"},
		{"EHLO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test>", "DATA",
			"Subject: y\r\n\r\nz\n.\nRSET\r\n.", "QUIT"},
		{"HELO x", "MAIL FROM:<a@b.example>\r\nRCPT TO:<root@mail.example.test>", "RCPT TO:<x@example.org>", "QUIT"},
	}
	for _, main := range []string{
		"smtpd_forbid_bare_newline = normalize\nmynetworks = 10.0.0.0/8\n",
		"smtpd_forbid_bare_newline = reject\nmynetworks = 10.0.0.0/8\n",
		"smtpd_forbid_bare_newline = reject\nmynetworks = 127.0.0.0/8\n",
	} {
		t.Run(strings.Fields(main)[2]+"/"+strings.Fields(main)[5], func(t *testing.T) {
			p := startSmtpdPair(t, main+"smtpd_error_sleep_time = 0\ndefer_transports = smtp, local, relay\n"+
				"smtpd_recipient_restrictions = reject_unauth_pipelining, permit_mynetworks, reject_unauth_destination\n", "")
			p.compare(t, sessions)
			p.compareLogs(t)
		})
	}
}

// held returns reduce of the postcat listing (postcat with args) of each
// message in postdove's hold queue and in the oracle's, sorted and
// joined with sep.
func (p *smtpdPair) held(t *testing.T, reduce func(string) string, sep string, args ...string) (got, want string) {
	t.Helper()
	all := func(dir string, cat func(path string) string) string {
		var out []string
		for _, path := range regularFiles(dir) {
			if !strings.HasPrefix(filepath.Base(path), "tmp.") {
				out = append(out, reduce(cat(path)))
			}
		}
		sort.Strings(out)
		return strings.Join(out, sep)
	}
	want = all(filepath.Join(p.inst.QueueDir, "hold"), func(path string) string {
		return oracle.Run(p.inst.Command("postcat", slices.Concat(args, []string{path})...), "").Stdout
	})
	got = all(filepath.Join(p.qdir, "hold"), func(path string) string {
		var out, errb strings.Builder
		if postcat.Main(slices.Concat(args, []string{"-c", p.cfgDir, path}), nil, &out, &errb) != 0 {
			t.Errorf("postcat %s: %s", path, errb.String())
		}
		return out.String()
	})
	return got, want
}

// heldHeaders returns the header of each message in the oracle's hold
// queue and in postdove's (postcat -h), queue IDs and dates blanked.
func (p *smtpdPair) heldHeaders(t *testing.T) (got, want string) {
	t.Helper()
	blank := func(s string) string {
		return headerDates.ReplaceAllString(queueIDs.ReplaceAllString(s, "ID"), "DATE")
	}
	return p.held(t, blank, "--\n", "-h")
}

// TestSmtpdTLS: STARTTLS and smtps (smtpd_tls_wrappermode = yes) as
// Postfix's: the EHLO keywords before and after, the replies, the
// "Anonymous TLS connection established" line at smtpd_tls_loglevel 1,
// and the TLS details in the Received header with
// smtpd_tls_received_header = yes. smtpd_tls_auth_only has nothing to
// hide yet: AUTH is not offered (no SASL).
func TestSmtpdTLS(t *testing.T) {
	cert, key := oracle.SelfSignedCert(t, "mail.example.test")
	base := "mynetworks = 10.0.0.0/8\nsmtpd_error_sleep_time = 0\nsmtpd_tls_cert_file = " + cert + "\nsmtpd_tls_key_file = " + key + "\n" +
		"smtpd_tls_loglevel = 1\nsmtpd_tls_received_header = yes\nsmtpd_tls_auth_only = yes\n" +
		"smtpd_sender_restrictions = check_sender_access inline:{a@b.example=HOLD}\n"
	tlsmgr := "tlsmgr unix - - n 1000? 1 tlsmgr\n"
	mail := []string{"MAIL FROM:<a@b.example>", "RCPT TO:<root@mail.example.test>", "DATA", "Subject: t\r\n\r\nhi\r\n.", "QUIT"}
	for _, tc := range []struct {
		name, main string
		wrapper    bool
		cmds       []string
	}{
		{"starttls", "smtpd_tls_security_level = may\n", false, append([]string{"EHLO c.example", "STARTTLS", "EHLO c.example"}, mail...)},
		{"smtps", "smtpd_tls_security_level = may\nsmtpd_tls_wrappermode = yes\n", true, append([]string{"EHLO c.example", "STARTTLS"}, mail...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startSmtpdPair(t, base+tc.main, tlsmgr)
			p.compareSessions(t, tc.wrapper, [][]string{tc.cmds})
			p.compareLogs(t)
			if got, want := p.heldHeaders(t); want == "" || got != want {
				t.Errorf("headers:\npostdove:\n%s\npostfix:\n%s", got, want)
			}
		})
	}
}

// smtpdLogLines are the smtpd lines of a maillog without time, pid and
// queue IDs, sorted.
func smtpdLogLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		_, rest, ok := strings.Cut(l, "postfix/smtpd[")
		if !ok || strings.Contains(l, "overriding earlier entry") {
			continue
		}
		_, rest, _ = strings.Cut(rest, "]: ")
		out = append(out, queueIDs.ReplaceAllString(rest, "ID"))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestSmtpdSendmailBs pipes the same SMTP dialogue into the oracle's
// sendmail -bs and postdove's bin/sendmail -bs, each with its running
// mail system: the replies, the smtpd log lines (client
// localhost[127.0.0.1], no relay restriction for the local user) and the
// queued message's two Received: headers (smtpd's with the maildrop
// queue ID, then pickup's) are the same.
func TestSmtpdSendmailBs(t *testing.T) {
	opts := oracle.PostfixOptions{MainCF: "defer_transports = smtp, local, relay\nmynetworks = 10.0.0.0/8\n"}
	pf := oracle.StartPostfix(t, opts)
	pd := oracle.StartPostdove(t, opts)
	dialogue := "EHLO c.example\r\nMAIL FROM:<a@b.example> BODY=8BITMIME\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<root>\r\n" +
		"DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<root>\r\nRSET\r\nVRFY root\r\nFOO\r\nQUIT\r\n"
	run := func(inst *oracle.Instance) (string, string, string) {
		res := oracle.Run(inst.Sendmail("-bs"), dialogue)
		if res.Code != 0 || res.Stderr != "" {
			t.Errorf("%s sendmail -bs: exit %d: %s", inst.System, res.Code, res.Stderr)
		}
		var headers string
		for i := 0; i < 100 && headers == ""; i++ {
			time.Sleep(100 * time.Millisecond)
			for _, path := range regularFiles(filepath.Join(inst.QueueDir, "deferred")) {
				headers = oracle.Run(inst.Command("postcat", "-h", path), "").Stdout
			}
		}
		headers = headerDates.ReplaceAllString(headers, "DATE")
		return queueIDs.ReplaceAllString(res.Stdout, "ID"), smtpdLogLines(inst.ReadMaillog()), queueIDs.ReplaceAllString(headers, "ID")
	}
	wantOut, wantLog, wantHdr := run(pf)
	gotOut, gotLog, gotHdr := run(pd)
	if gotOut != wantOut {
		t.Errorf("replies:\npostdove:\n%s\npostfix:\n%s", gotOut, wantOut)
	}
	if gotLog != wantLog {
		t.Errorf("maillog:\npostdove:\n%s\npostfix:\n%s", gotLog, wantLog)
	}
	if wantHdr == "" || gotHdr != wantHdr {
		t.Errorf("queued headers:\npostdove:\n%s\npostfix:\n%s", gotHdr, wantHdr)
	}
}

// startNamed runs BIND's named on ip port 53 (an interface address), authoritative for zone
// dns.test with records, without recursion (other names are refused),
// until the test ends.
func startNamed(t *testing.T, ip string, records string) {
	oracle.StartNamed(t, ip, 53, oracle.Zone{Name: "dns.test",
		Text: "$TTL 60\n$ORIGIN dns.test.\n@ IN SOA ns root ( 1 60 60 600 60 )\n@ IN NS ns\nns IN A " + ip + "\n" + records})
}

// restartWithNamed restarts the oracle in a private mount namespace
// whose /etc/resolv.conf names only the named on ip, and empties both
// maillogs.
func (p *smtpdPair) restartWithNamed(t *testing.T, ip string) {
	t.Helper()
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+ip+"\noptions timeout:1 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	oracle.Run(p.inst.Command("postfix", "stop"), "")
	for i := 0; i < 100 && smtpdListens(p.pfAddr); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	start := p.inst.Command("postfix", "start")
	wrapped := exec.Command("unshare", append([]string{"-m", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv, start.Path}, start.Args[1:]...)...)
	wrapped.Env = start.Env
	if res := oracle.Run(wrapped, ""); res.Code != 0 {
		t.Fatalf("postfix start: %s%s", res.Stdout, res.Stderr)
	}
	for i := 0; i < 100 && !smtpdListens(p.pfAddr); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the probes' log lines, then a fresh start
	os.WriteFile(p.logf, nil, 0o644)
	os.WriteFile(p.inst.Maillog, nil, 0o644)
}

func skipWithoutUnshare(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare(1) is needed for a private /etc/resolv.conf")
	}
}

// TestSmtpdReverseName: the client's name is its PTR name only when
// that resolves back to its address; otherwise it is unknown, with
// Postfix's warning (a name that does not exist, one with no address,
// one with another address). Both servers ask the same named, clients
// connect from 127.0.0.5-8 (not in /etc/hosts).
func TestSmtpdReverseName(t *testing.T) {
	skipWithoutUnshare(t)
	ip := "127.0.0.1"
	resolver := oracle.StartNamed(t, ip, 53, oracle.Zone{Name: "dns.test",
		Text: "$TTL 60\n$ORIGIN dns.test.\n@ IN SOA ns root ( 1 60 60 600 60 )\n@ IN NS ns\nns IN A " + ip + "\n" +
			"good IN A 127.0.0.5\nother IN A 192.0.2.9\nnoaddr IN MX 10 ns\n"},
		oracle.Zone{Name: "127.in-addr.arpa",
			Text: "$TTL 60\n$ORIGIN 127.in-addr.arpa.\n@ IN SOA ns.dns.test. root.dns.test. ( 1 60 60 600 60 )\n@ IN NS ns.dns.test.\n" +
				"5.0.0 IN PTR good.dns.test.\n6.0.0 IN PTR other.dns.test.\n7.0.0 IN PTR gone.dns.test.\n8.0.0 IN PTR noaddr.dns.test.\n"})
	p := startSmtpdPair(t, "smtpd_error_sleep_time = 0\n", "", func(s *smtpd.Server) { s.Resolver = resolver })
	p.restartWithNamed(t, ip)
	for _, from := range []string{"127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"} {
		p.from = from
		p.compare(t, [][]string{{"HELO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<x@elsewhere.example>", "QUIT"}})
	}
	p.compareLogs(t)
}

// TestSmtpdUnknownDomain: reject_unknown_sender_domain,
// reject_unknown_recipient_domain and reject_unlisted_sender against
// Postfix 3.7's smtpd, both asking the same named (the oracle through
// /etc/resolv.conf in a private mount namespace): a domain without MX, A
// or AAAA is "Domain not found" with unknown_address_reject_code, a null
// MX refuses mail, a DNS failure defers only what would be accepted.
func TestSmtpdUnknownDomain(t *testing.T) {
	skipWithoutUnshare(t)
	// resolv.conf has no port, and named listens only on the addresses
	// of interfaces: 127.0.0.1:53.
	ip := "127.0.0.1"
	startNamed(t, ip, "has-a IN A 192.0.2.1\nhas-mx IN MX 10 mx\nmx IN A 192.0.2.2\nnullmx IN MX 0 .\n")
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(ip, "53"))
	}}
	p := startSmtpdPair(t, "mynetworks = 127.0.0.0/8\nsmtpd_error_sleep_time = 0\n"+
		"smtpd_sender_restrictions = reject_unknown_sender_domain, reject_unlisted_sender\n"+
		"smtpd_recipient_restrictions = reject_unknown_recipient_domain, permit\n", "",
		func(s *smtpd.Server) { s.Resolver = resolver })
	p.restartWithNamed(t, ip)
	p.compare(t, [][]string{
		{"HELO c.example", "MAIL FROM:<a@nowhere.dns.test>", "RCPT TO:<root@mail.example.test>", "RSET",
			"MAIL FROM:<a@nullmx.dns.test>", "RCPT TO:<root@mail.example.test>", "RSET",
			"MAIL FROM:<a@has-a.dns.test>", "RCPT TO:<x@nowhere.dns.test>", "RCPT TO:<x@nullmx.dns.test>",
			"RCPT TO:<x@has-mx.dns.test>", "RCPT TO:<x@elsewhere.invalid>", "RSET",
			"MAIL FROM:<a@elsewhere.invalid>", "RCPT TO:<root@mail.example.test>", "RSET",
			"MAIL FROM:<nosuchuser@mail.example.test>", "RCPT TO:<root@mail.example.test>", "QUIT"},
	})
	p.compareLogs(t)
}

func smtpdListens(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// TestSmtpdConnectionCountLimit: a client past
// smtpd_client_connection_count_limit simultaneous sessions is turned
// away as Postfix's anvil-backed smtpd does it, reply and log line; a
// client in the exceptions ($mynetworks) is not counted.
func TestSmtpdConnectionCountLimit(t *testing.T) {
	p := startSmtpdPair(t, "mynetworks = 10.0.0.0/8\nsmtpd_client_connection_count_limit = 2\nsmtpd_error_sleep_time = 0\n", "")
	third := func(addr string) string {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
			if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
				t.Fatalf("banner %d: %v", i, err)
			}
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	want := third(p.pfAddr)
	got := third(p.addr)
	t.Logf("postfix: %q", want)
	if got != want {
		t.Errorf("third connection: postdove %q, postfix %q", got, want)
	}
	time.Sleep(500 * time.Millisecond)
	warn := regexp.MustCompile(`warning: Connection concurrency limit exceeded: 3 from localhost\[127\.0\.0\.1\] for service `)
	for name, path := range map[string]string{"postfix": p.inst.Maillog, "postdove": p.logf} {
		b, _ := os.ReadFile(path)
		if !warn.Match(b) {
			t.Errorf("%s maillog lacks %s:\n%s", name, warn, b)
		}
	}
}
