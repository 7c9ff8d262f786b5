package smtpd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"postdove/pkg/maillog"
	"postdove/pkg/postconf"
	"postdove/pkg/queue"
)

type testServer struct {
	addr string
	q    *queue.Queue
	logf string
}

// start runs smtpd on 127.0.0.1 with main.cf's base settings plus extra.
func start(t testing.TB, extra string) *testServer {
	t.Helper()
	dir := t.TempDir()
	qdir := filepath.Join(dir, "queue")
	logf := filepath.Join(dir, "maillog")
	main := "queue_directory = " + qdir + "\n" +
		"myhostname = mail.example.test\nmydomain = example.test\n" +
		"mydestination = $myhostname, localhost.$mydomain, localhost\n" +
		"smtpd_error_sleep_time = 0\nalias_maps =\n" +
		"maillog_file = " + logf + "\n" + extra
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main), 0644); err != nil {
		t.Fatal(err)
	}
	cfg, err := postconf.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.Setup(qdir, "root", "root"); err != nil {
		t.Fatal(err)
	}
	log, err := maillog.New(maillog.Options{SyslogName: "postfix", Program: "smtpd", File: logf, Hostname: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	q := queue.New(qdir)
	s := New(cfg, q, log)
	s.Lookup = func(context.Context, string) string { return "localhost" }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &testServer{addr: ln.Addr().String(), q: q, logf: logf}
}

// maillog is the log once every session has logged its disconnect.
func (ts *testServer) maillog(t testing.TB) string {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(ts.logf)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if strings.Count(s, "]: connect from") == strings.Count(s, "]: disconnect from") || time.Now().After(deadline) {
			return s
		}
	}
}

// dialog sends each ">" line of script and checks that the replies match
// the other lines ("*" in a line matches any text to its end; "<EOF>"
// is the server closing the connection).
func dialog(t testing.TB, addr, script string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	for _, want := range strings.Split(strings.TrimSpace(script), "\n") {
		if want == "" {
			continue
		}
		if cmd, ok := strings.CutPrefix(want, "> "); ok {
			if _, err := io.WriteString(c, strings.NewReplacer(`\r`, "\r", `\n`, "\n").Replace(cmd)+"\r\n"); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := r.ReadString('\n')
		if want == "<EOF>" {
			// A close with the client's next command unread is a reset.
			if (err != io.EOF && !errors.Is(err, syscall.ECONNRESET)) || got != "" {
				t.Fatalf("want the connection closed, got %q %v", got, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("want %q: %v", want, err)
		}
		got = strings.TrimSuffix(got, "\r\n")
		if p, ok := strings.CutSuffix(want, "*"); ok && strings.HasPrefix(got, p) {
			continue
		}
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// ehlo is a dialog's EHLO and Postfix's reply with the default settings.
const ehlo = `> EHLO client.example
250-mail.example.test
250-PIPELINING
250-SIZE 10240000
250-VRFY
250-ETRN
250-ENHANCEDSTATUSCODES
250-8BITMIME
250-DSN
250-SMTPUTF8
250 CHUNKING
`

// Pieces of dialog scripts: the banner, QUIT and its reply, HELO name,
// MAIL FROM:<sender> and RCPT TO:<root@mail.example.test> with its reply.
const (
	banner = "\n220 mail.example.test ESMTP Postfix\n"
	quit   = "> QUIT\n221 2.0.0 Bye\n"
)

func heloAs(name string) string     { return "> HELO " + name + "\n250 mail.example.test\n" }
func mailFrom(sender string) string { return "> MAIL FROM:<" + sender + ">\n250 2.1.0 Ok\n" }
func rcptRoot(reply string) string  { return "> RCPT TO:<root@mail.example.test>\n" + reply + "\n" }

// heloMailAs starts a dialog: the banner, HELO name and MAIL
// FROM:<a@b.example>.
func heloMailAs(name string) string { return banner + heloAs(name) + mailFrom("a@b.example") }

// heloMail and heloData start a dialog: the banner, HELO and MAIL, then
// a recipient and DATA.
var (
	heloMail = heloMailAs("c.example")
	heloData = heloMail + rcptRoot("250 2.1.5 Ok") + "> DATA\n354 End data with <CR><LF>.<CR><LF>\n"
)

// logHas checks that the maillog has each of want.
func (ts *testServer) logHas(t testing.TB, want ...string) string {
	t.Helper()
	log := ts.maillog(t)
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Errorf("maillog lacks %q:\n%s", w, log)
		}
	}
	return log
}

// The replies are those of Postfix 3.7's smtpd for the same commands
// (compat/oracle, 127.0.0.1 in mynetworks).
func TestSession(t *testing.T) {
	ts := start(t, "")
	dialog(t, ts.addr, banner+ehlo+`> HELO x
250 mail.example.test
> FOO
500 5.5.2 Error: command not recognized
> VRFY root
252 2.0.0 root
> ETRN foo
459 <foo>: service unavailable
> NOOP
250 2.0.0 Ok
> MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME
250 2.1.0 Ok
> RCPT TO:<x@elsewhere.example>
250 2.1.5 Ok
> RCPT TO:<root@mail.example.test> NOTIFY=NEVER
250 2.1.5 Ok
> DATA
354 End data with <CR><LF>.<CR><LF>
> Subject: t\n\nhello\n..dot\n.
250 2.0.0 Ok: queued as *
> RSET
250 2.0.0 Ok
> MAIL FROM:<>
250 2.1.0 Ok
> MAIL FROM:<a@b>
503 5.5.1 Error: nested MAIL command
`+quit)
	ts.logHas(t,
		"postfix/smtpd[", "]: connect from localhost[127.0.0.1]\n",
		"]: warning: reject: ETRN foo... from localhost[127.0.0.1]\n",
		": client=localhost[127.0.0.1]\n",
		"]: disconnect from localhost[127.0.0.1] helo=1 ehlo=1 mail=2/3 rcpt=2 data=1 rset=1 noop=1 vrfy=1 etrn=0/1 quit=1 unknown=0/1 commands=11/14\n")
}

// TestRelayDenied: the classic open-relay tricks get Relay access denied,
// 554 5.7.1 from reject_unauth_destination and, with no setting at
// compatibility level 0 (CentOS 7's Postfix 2.10 default), 454 4.7.1 from
// defer_unauth_destination.
func TestRelayDenied(t *testing.T) {
	for _, c := range []struct{ mainCF, code string }{
		{"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n", "554 5.7.1"},
		{"", "454 4.7.1"},
	} {
		ts := start(t, "mynetworks = 10.0.0.0/8\n"+c.mainCF)
		relayDialog(t, ts, c.code)
	}
	// Without HELO the log line has no helo=<>, as Postfix's.
	ts := start(t, "mynetworks = 10.0.0.0/8\n")
	dialog(t, ts.addr, banner+mailFrom("a@b.example")+"> RCPT TO:<x@elsewhere.example>\n454 4.7.1 <x@elsewhere.example>: Relay access denied\n"+quit)
	ts.logHas(t, "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 454 4.7.1 <x@elsewhere.example>: Relay access denied; from=<a@b.example> to=<x@elsewhere.example> proto=SMTP\n")
}

func relayDialog(t *testing.T, ts *testServer, code string) {
	t.Helper()
	dialog(t, ts.addr, strings.ReplaceAll(banner+ehlo+mailFrom("a@b.example")+`> RCPT TO:<x@elsewhere.example>
554 5.7.1 <x@elsewhere.example>: Relay access denied
> RCPT TO:<x%elsewhere.example@mail.example.test>
554 5.7.1 <x%elsewhere.example@mail.example.test>: Relay access denied
> RCPT TO:<"x@elsewhere.example"@mail.example.test>
554 5.7.1 <x@elsewhere.example@mail.example.test>: Relay access denied
> RCPT TO:<elsewhere.example!x@mail.example.test>
554 5.7.1 <elsewhere.example!x@mail.example.test>: Relay access denied
> RCPT TO:<@mail.example.test:x@elsewhere.example>
554 5.7.1 <x@elsewhere.example>: Relay access denied
> RCPT TO:<X@ELSEWHERE.EXAMPLE>
554 5.7.1 <X@ELSEWHERE.EXAMPLE>: Relay access denied
> RCPT TO:<x%elsewhere.example>
554 5.7.1 <x%elsewhere.example>: Relay access denied
> RCPT TO:<elsewhere.example!x>
554 5.7.1 <elsewhere.example!x>: Relay access denied
> RCPT TO:<"x@elsewhere.example">
554 5.7.1 <x@elsewhere.example>: Relay access denied
> RCPT TO:<root>
250 2.1.5 Ok
> RCPT TO:<root@MAIL.example.test>
250 2.1.5 Ok
`+quit, "554 5.7.1", code))
	ts.logHas(t, "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: "+code+" <x@elsewhere.example>: Relay access denied; from=<a@b.example> to=<x@elsewhere.example> proto=ESMTP helo=<client.example>\n")
}

// TestBareAccessTable: a type:table alone in a restriction list is that
// list's access check, as the notes' smtpd_client_restrictions =
// hash:/etc/postfix/access; a client table is searched for the address and
// its shorter octet prefixes, never for a CIDR block. The data list has no
// such check. Replies and log lines as Postfix 3.7's (compat/oracle).
func TestBareAccessTable(t *testing.T) {
	rejected := "554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: Access denied"
	for _, c := range []struct{ table, reply string }{
		{"inline:{127.0.0.1=REJECT}", rejected},
		{"inline:{127.0.0=REJECT}", rejected},
		{"inline:{ {127.0.0.0/8=REJECT} }", "250 2.1.5 Ok"},
	} {
		ts := start(t, "smtpd_client_restrictions = "+c.table+"\n")
		dialog(t, ts.addr, heloMailAs("client.example")+rcptRoot(c.reply)+quit)
	}
	ts := start(t, "smtpd_helo_restrictions = inline:{bad.helo=REJECT}\nsmtpd_data_restrictions = inline:{x=OK}\n")
	dialog(t, ts.addr, heloMailAs("bad.helo")+rcptRoot("554 5.7.1 <bad.helo>: Helo command rejected: Access denied")+
		"> RSET\n250 2.0.0 Ok\n"+heloAs("good.helo")+mailFrom("a@b.example")+rcptRoot("250 2.1.5 Ok")+
		"> DATA\n451 4.3.5 Server configuration error\n"+quit)
	ts.logHas(t, `warning: specify one of (check_client_access, check_reverse_client_hostname_access, check_helo_access, check_sender_access, check_recipient_access, check_etrn_access) before Data command restriction "inline:{x=OK}"`)
}

// Replies checked against Postfix 3.7's smtpd with the same main.cf
// (compat/oracle, compatibility_level 3.6: defer_unauth_destination).
func TestAccessTables(t *testing.T) {
	ts := start(t, `compatibility_level = 3.6
mynetworks = 10.0.0.0/8
smtpd_recipient_restrictions = check_recipient_access inline:{blocked@mail.example.test=REJECT, {text@mail.example.test=550 5.1.2 go away}, dd@mail.example.test=DEFER, {n@mail.example.test=450 no}, mail.example.test=DUNNO, ok@elsewhere.example=OK}
smtpd_sender_restrictions = reject_non_fqdn_sender, check_sender_access inline:{bad@b.example=REJECT}
smtpd_helo_restrictions = reject_invalid_helo_hostname
`)
	dialog(t, ts.addr, heloMailAs("client.example")+`> RCPT TO:<blocked@mail.example.test>
554 5.7.1 <blocked@mail.example.test>: Recipient address rejected: Access denied
> RCPT TO:<text@mail.example.test>
550 5.1.2 <text@mail.example.test>: Recipient address rejected: go away
> RCPT TO:<dd@mail.example.test>
450 4.7.1 <dd@mail.example.test>: Recipient address rejected: Access denied
> RCPT TO:<n@mail.example.test>
450 4.7.1 <n@mail.example.test>: Recipient address rejected: no
> RCPT TO:<ok@elsewhere.example>
454 4.7.1 <ok@elsewhere.example>: Relay access denied
> RCPT TO:<x@elsewhere.example>
454 4.7.1 <x@elsewhere.example>: Relay access denied
> RCPT TO:<nosuchuser@mail.example.test>
550 5.1.1 <nosuchuser@mail.example.test>: Recipient address rejected: User unknown in local recipient table
> RCPT TO:<root@mail.example.test>
250 2.1.5 Ok
> RSET
250 2.0.0 Ok
> MAIL FROM:<bad@b.example>
250 2.1.0 Ok
> RCPT TO:<root@mail.example.test>
554 5.7.1 <bad@b.example>: Sender address rejected: Access denied
> RSET
250 2.0.0 Ok
> MAIL FROM:<a@b>
250 2.1.0 Ok
> RCPT TO:<root@mail.example.test>
504 5.5.2 <a@b>: Sender address rejected: need fully-qualified address
`+quit)
	dialog(t, ts.addr, heloMailAs("bad_helo!")+rcptRoot("501 5.5.2 <bad_helo!>: Helo command rejected: Invalid name")+quit)
	ts.logHas(t,
		"NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 504 5.5.2 <a@b>: Sender address rejected: need fully-qualified address; from=<a@b> to=<root@mail.example.test> proto=SMTP helo=<client.example>\n",
		"disconnect from localhost[127.0.0.1] helo=1 mail=3 rcpt=1/10 rset=2 quit=1 commands=8/17\n")
}

// A table that cannot be opened answers Postfix's 451 4.3.5.
func TestAccessTableMissing(t *testing.T) {
	ts := start(t, "smtpd_recipient_restrictions = check_recipient_access hash:/nonexistent\n")
	dialog(t, ts.addr, heloMailAs("client.example")+rcptRoot("451 4.3.5 <root@mail.example.test>: Recipient address rejected: Server configuration error")+quit)
}

// queued returns the one message in the incoming queue.
func (ts *testServer) queued(t testing.TB) string {
	t.Helper()
	ids, err := ts.q.List(queue.Incoming)
	if err != nil || len(ids) != 1 {
		t.Fatalf("incoming queue: %v %v", ids, err)
	}
	f, err := ts.q.Open(queue.Incoming, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f.Content())
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`[A-Z][a-z][a-z], [ 0-9]\d \w+ \d{4} \d\d:\d\d:\d\d [-+]\d{4} \(\w+\)`).ReplaceAllString(strings.ReplaceAll(string(b), ids[0], "ID"), "DATE")
}

// The Received: header is Postfix 3.7's (compat/oracle: postcat -bh of
// the same messages).
func TestReceived(t *testing.T) {
	for _, tc := range []struct{ rcpts, want string }{
		{"> RCPT TO:<root@mail.example.test>\n250 2.1.5 Ok", "Received: from client.example (localhost [127.0.0.1])\n\tby mail.example.test (Postfix) with ESMTP id ID\n\tfor <root@mail.example.test>; DATE\nSubject: t\n"},
		{"> RCPT TO:<root@mail.example.test>\n250 2.1.5 Ok\n> RCPT TO:<root>\n250 2.1.5 Ok", "Received: from client.example (localhost [127.0.0.1])\n\tby mail.example.test (Postfix) with ESMTP id ID;\n\tDATE\nSubject: t\n"},
	} {
		ts := start(t, "")
		dialog(t, ts.addr, banner+ehlo+mailFrom("a@b.example")+tc.rcpts+`
> DATA
354 End data with <CR><LF>.<CR><LF>
> Subject: t\n\nhello\n.
250 2.0.0 Ok: queued as *
`+quit)
		if got := ts.queued(t); !strings.HasPrefix(got, tc.want) {
			t.Errorf("queued:\n%s\nwant prefix:\n%s", got, tc.want)
		}
	}
}

// Where DATA ends, as Postfix 3.7 with smtpd_forbid_bare_newline = no
// decides (compat/oracle): a bare LF ends a line, a bare CR does not,
// and "." then ends the message; a "." taken as a command is a non-SMTP
// command that ends the session.
func TestDataEnd(t *testing.T) {
	for _, tc := range []struct {
		end   string
		ended bool
	}{
		{"\n.\n", true}, {"\r\n.\n", true}, {"\n.\r\n", true},
		{"\r.\r\n", false}, {"\r\n.\r", false}, {"\r\n.\r\r\n", true},
	} {
		ts := start(t, "")
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(c, "HELO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<root@mail.example.test>\r\nDATA\r\n")
		io.WriteString(c, "Subject: x\r\n\r\na"+tc.end+"RSET\r\n.\r\nQUIT\r\n")
		b, _ := io.ReadAll(c)
		c.Close()
		want := "250 2.0.0 Ok: queued as"
		if tc.ended {
			want += " *\r\n250 2.0.0 Ok\r\n221 2.7.0 Error: I can break rules, too. Goodbye.\r\n"
		} else {
			want += " *\r\n221 2.0.0 Bye\r\n"
		}
		got := regexp.MustCompile(`queued as \w+`).ReplaceAllString(string(b), "queued as *")
		if !strings.HasSuffix(got, strings.ReplaceAll(want, "as *", "as *")) {
			t.Errorf("end %q: got\n%s\nwant suffix\n%s", tc.end, got, want)
		}
	}
}

// Limits, replies and log lines as Postfix 3.7's with the same settings
// (compat/oracle).
func TestLimits(t *testing.T) {
	ts := start(t, "message_size_limit = 1000\nsmtpd_recipient_limit = 2\nsmtpd_hard_error_limit = 3\nsmtpd_timeout = 1s\n")
	ehlo := `
220 mail.example.test ESMTP Postfix
> EHLO c.example
250-mail.example.test
250-PIPELINING
250-SIZE 1000
250-VRFY
250-ETRN
250-ENHANCEDSTATUSCODES
250-8BITMIME
250-DSN
250-SMTPUTF8
250 CHUNKING
`
	dialog(t, ts.addr, ehlo+`
> MAIL FROM:<a@b.example> SIZE=2000
552 5.3.4 Message size exceeds fixed limit
> MAIL FROM:<a@b.example> FOO=bar
555 5.5.4 Unsupported option: FOO=bar
> MAIL FROM:<a@b.example> SIZE=100
250 2.1.0 Ok
> RCPT TO:<root@mail.example.test>
250 2.1.5 Ok
> RCPT TO:<root@mail.example.test>
250 2.1.5 Ok
> RCPT TO:<root@mail.example.test>
452 4.5.3 Error: too many recipients
> BDAT 12\r\nSubject: x
250 2.0.0 Ok: 12 bytes
> BDAT 7 LAST\r\n\r\nabc
250 2.0.0 Ok: 19 bytes queued as *
> MAIL FROM:<a@b.example>
250 2.1.0 Ok
> RCPT TO:<root@mail.example.test>
250 2.1.5 Ok
> DATA
354 End data with <CR><LF>.<CR><LF>
> Subject: y\r\n\r\n`+strings.Repeat("x", 2000)+`\r\n.
552 5.3.4 Error: message file too big
> RSET
250 2.0.0 Ok
> DATA
503 5.5.1 Error: need RCPT command
`)
	dialog(t, ts.addr, ehlo+`
> FOO
500 5.5.2 Error: command not recognized
> BAR
500 5.5.2 Error: command not recognized
> BAZ
500 5.5.2 Error: command not recognized
> QUX
421 4.7.0 mail.example.test Error: too many errors
`)
	dialog(t, ts.addr, ehlo+`
> MAIL FROM:<a@b.example>
250 2.1.0 Ok
> RCPT TO:<root@mail.example.test>
250 2.1.5 Ok
> DATA
354 End data with <CR><LF>.<CR><LF>
> Subject: y
421 4.4.2 mail.example.test Error: timeout exceeded
`)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "EHLO c.example\r\n")
	r := bufio.NewReader(c)
	for {
		l, err := r.ReadString('\n')
		if err != nil || strings.HasPrefix(l, "250 ") {
			break
		}
	}
	c.Close()
	ts.logHas(t,
		"NOQUEUE: reject: MAIL from localhost[127.0.0.1]: 552 5.3.4 Message size exceeds fixed limit; from=<a@b.example> proto=ESMTP helo=<c.example>\n",
		"too many errors after UNKNOWN from localhost[127.0.0.1]\n",
		"disconnect from localhost[127.0.0.1] ehlo=1 unknown=0/3 commands=1/4\n",
		"timeout after DATA (12 bytes) from localhost[127.0.0.1]\n",
		"disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4\n",
		"lost connection after EHLO from localhost[127.0.0.1]\n")
}

// A message line of any length is taken whole (Postfix: no 500 for a
// long body line).
func TestLongLine(t *testing.T) {
	ts := start(t, "")
	long := strings.Repeat("y", 200000)
	dialog(t, ts.addr, heloData+`> Subject: long\n\n`+long+`\n.
250 2.0.0 Ok: queued as *
`+quit)
	if got := ts.queued(t); !strings.Contains(got, "\n\n"+long+"\n") {
		t.Errorf("long line not queued whole (%d bytes)", len(got))
	}
}

// The body reader is swapped in for DATA and out after it: a pipelined
// batch (EHLO, PIPELINING) whose body and next commands arrive in one
// write, with body and command lines longer than the 1 KiB command
// buffer, keeps every byte in order.
func TestPipelinedBodyAcrossReaders(t *testing.T) {
	ts := start(t, "")
	body := strings.Repeat("z", 3000)
	dialog(t, ts.addr, banner+ehlo+`> MAIL FROM:<a@b.example>\r\nRCPT TO:<root@mail.example.test>\r\nDATA
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
> Subject: p\r\n\r\n`+body+`\r\n.\r\nMAIL FROM:<c@d.example>\r\nRCPT TO:<`+strings.Repeat("r", 1500)+`@mail.example.test>\r\nNOOP
250 2.0.0 Ok: queued as *
250 2.1.0 Ok
*
250 2.0.0 Ok
`+quit)
	if got := ts.queued(t); !strings.Contains(got, "\n\n"+body+"\n") {
		t.Errorf("body not queued whole:\n%.300s", got)
	}
}

// smtpd_helo_required and reject_unauth_pipelining in
// smtpd_data_restrictions, as Postfix 3.7 answers (compat/oracle).
func TestHeloRequiredPipelining(t *testing.T) {
	ts := start(t, "smtpd_helo_required = yes\nsmtpd_data_restrictions = reject_unauth_pipelining\n")
	dialog(t, ts.addr, banner+`> MAIL FROM:<a@b.example>
503 5.5.1 Error: send HELO/EHLO first
> VRFY root
252 2.0.0 root
> ETRN x
503 Error: send HELO/EHLO first
> HELO x
250 mail.example.test
> MAIL FROM:<a@b.example>\r\nRCPT TO:<root@mail.example.test>\r\nDATA\r\nSubject: x\r\n\r\n.
250 2.1.0 Ok
250 2.1.5 Ok
503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining
221 2.7.0 Error: I can break rules, too. Goodbye.
`)
	log := ts.maillog(t)
	want := ": reject: DATA from localhost[127.0.0.1]: 503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining; from=<a@b.example> to=<root@mail.example.test> proto=SMTP helo=<x>\n"
	if !regexp.MustCompile(`]: [0-9A-F]+` + regexp.QuoteMeta(want)).MatchString(log) {
		t.Errorf("maillog lacks %q:\n%s", want, log)
	}
}

// STARTTLS with a certificate, driven by swaks --tls: the keyword is
// advertised where Postfix puts it, the mail is queued and the TLS line
// logged.
func TestStartTLS(t *testing.T) {
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Skip("swaks not installed")
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mail.example.test",
		"-days", "2", "-keyout", key, "-out", cert).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	ts := start(t, "smtpd_tls_security_level = may\nsmtpd_tls_loglevel = 1\nsmtpd_tls_cert_file = "+cert+"\nsmtpd_tls_key_file = "+key+"\n")
	host, port, _ := net.SplitHostPort(ts.addr)
	out, err = exec.Command("swaks", "--server", host, "--port", port, "--tls", "--ehlo", "client.example",
		"--from", "a@b.example", "--to", "root@mail.example.test").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	tlsLogged(t, ts)
	for _, want := range []string{"<-  250-ETRN\n<-  250-STARTTLS\n<-  250-ENHANCEDSTATUSCODES", " -> STARTTLS\n<-  220 2.0.0 Ready to start TLS", "<~  250 2.0.0 Ok: queued as "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("swaks transcript lacks %q:\n%s", want, out)
		}
	}
	// smtpd_tls_security_level = encrypt, as Postfix 3.7 answers.
	ts = start(t, "smtpd_tls_security_level = encrypt\nsmtpd_tls_cert_file = "+cert+"\nsmtpd_tls_key_file = "+key+"\n")
	dialog(t, ts.addr, banner+`> MAIL FROM:<a@b.example>
530 5.7.0 Must issue a STARTTLS command first
> STARTTLS x
501 5.5.4 Syntax: STARTTLS
`+quit)
	ts.logHas(t, "disconnect from localhost[127.0.0.1] starttls=0/1 mail=0/1 quit=1 commands=1/3\n")
}

func tlsLogged(t *testing.T, ts *testServer) {
	if log := ts.maillog(t); !regexp.MustCompile(`Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+ bits\)`).MatchString(log) {
		t.Errorf("maillog lacks the TLS line:\n%s", log)
	}
}

// smtps (smtpd_tls_wrappermode = yes) driven by Python's
// smtplib.SMTP_SSL: TLS from the first byte, the message queued with
// "with ESMTPS" and, with smtpd_tls_received_header, the TLS details in
// its Received header; at smtpd_tls_loglevel 0 no TLS line is logged.
func TestSmtps(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mail.example.test",
		"-days", "2", "-keyout", key, "-out", cert).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	ts := start(t, "smtpd_tls_wrappermode = yes\nsmtpd_tls_received_header = yes\nsmtpd_tls_cert_file = "+cert+"\nsmtpd_tls_key_file = "+key+"\n")
	host, port, _ := net.SplitHostPort(ts.addr)
	script := `import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP_SSL(sys.argv[1], int(sys.argv[2]), context=ctx, local_hostname="client.example")
print(s.ehlo()[0])
s.sendmail("a@b.example", ["root@mail.example.test"], "Subject: s\r\n\r\nhi\r\n")
s.quit()
`
	if out, err := exec.Command("python3", "-c", script, host, port).CombinedOutput(); err != nil || string(out) != "250\n" {
		t.Fatalf("python3 smtplib.SMTP_SSL: %v\n%s", err, out)
	}
	got := ts.queued(t)
	want := regexp.MustCompile(`^Received: from client\.example \(localhost \[127\.0\.0\.1\]\)\n\t\(using TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+ bits\)\n\t key-exchange X25519 server-signature RSA-PSS \(2048 bits\) server-digest SHA256\)\n\t\(No client certificate requested\)\n\tby mail\.example\.test \(Postfix\) with ESMTPS id ID\n`)
	if !want.MatchString(got) {
		t.Errorf("queued:\n%s", got)
	}
	if log := ts.maillog(t); strings.Contains(log, "TLS connection established") {
		t.Errorf("TLS line at smtpd_tls_loglevel 0:\n%s", log)
	}
}

// The queue file exists from the first accepted RCPT, as in Postfix
// (compat/oracle): "ID: client=" then, "ID: reject:" after, and RSET or a
// lost connection removes it.
func TestQueueFileTiming(t *testing.T) {
	ts := start(t, "mynetworks = 10.0.0.0/8\n")
	dialog(t, ts.addr, heloMail+`> RCPT TO:<x@elsewhere.example>
454 4.7.1 <x@elsewhere.example>: Relay access denied
> RCPT TO:<root@mail.example.test>
250 2.1.5 Ok
> RCPT TO:<y@elsewhere.example>
454 4.7.1 <y@elsewhere.example>: Relay access denied
> RSET
250 2.0.0 Ok
> MAIL FROM:<a@b.example>
250 2.1.0 Ok
> RCPT TO:<root@mail.example.test>
250 2.1.5 Ok
`)
	log := ts.maillog(t)
	for _, re := range []string{
		`NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 454 4\.7\.1 <x@elsewhere\.example>`,
		`\]: ([0-9A-F]+): client=localhost\[127\.0\.0\.1\]\n.*\]: ([0-9A-F]+): reject: RCPT from localhost\[127\.0\.0\.1\]: 454 4\.7\.1 <y@elsewhere\.example>`,
		`lost connection after RCPT from localhost\[127\.0\.0\.1\]`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("maillog lacks %s:\n%s", re, log)
		}
	}
	if m := regexp.MustCompile(`([0-9A-F]+): client=`).FindAllStringSubmatch(log, -1); len(m) != 2 || m[0][1] == m[1][1] {
		t.Errorf("want two queue IDs:\n%s", log)
	}
	entries, _ := os.ReadDir(filepath.Join(ts.q.Dir, "incoming"))
	if len(entries) != 0 {
		t.Errorf("incoming queue keeps %v", entries)
	}
}

// MAIL and RCPT parameters reach the queue file as Postfix records them
// (compat/oracle: postcat): ENVID and ORCPT xtext decoded, RET, BODY,
// SMTPUTF8 (and "with UTF8SMTP"), NOTIFY, and ORCPT rfc822;address when
// none was given; access HOLD puts the message in the hold queue.
func TestESMTPParameters(t *testing.T) {
	ts := start(t, "smtpd_sender_restrictions = check_sender_access inline:{a@b.example=HOLD}\n")
	dialog(t, ts.addr, banner+ehlo+`> MAIL FROM:<a@b.example> RET=HDRS ENVID=abc+2Bd BODY=8BITMIME SMTPUTF8
250 2.1.0 Ok
> RCPT TO:<root@mail.example.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;R+40x
250 2.1.5 Ok
> RCPT TO:<root> NOTIFY=NEVER
250 2.1.5 Ok
> RCPT TO:<root> NOTIFY=never,success
501 5.5.4 Error: Bad NOTIFY parameter syntax
> DATA
354 End data with <CR><LF>.<CR><LF>
> Subject: t\n\nhi\n.
250 2.0.0 Ok: queued as *
`)
	ids, err := ts.q.List(queue.Hold)
	if err != nil || len(ids) != 1 {
		t.Fatalf("hold queue: %v %v", ids, err)
	}
	m, err := ts.q.ReadEnvelope(queue.Hold, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{queue.AttrENVID: "abc+d", queue.AttrRET: "HDRS", queue.AttrBody: "8BITMIME",
		queue.AttrSMTPUTF8: "1", queue.AttrProtocol: "ESMTP", queue.AttrHELO: "client.example", queue.AttrClientAddr: "127.0.0.1"} {
		if m.Attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, m.Attrs[k], v)
		}
	}
	want := []queue.Recipient{
		{Address: "root@mail.example.test", Orig: "root@mail.example.test", Notify: "SUCCESS,DELAY", ORCPT: "rfc822;R@x"},
		{Address: "root@mail.example.test", Orig: "root", Notify: "NEVER", ORCPT: "rfc822;root"},
	}
	if len(m.Recipients) != len(want) {
		t.Fatalf("recipients %+v", m.Recipients)
	}
	for i, r := range m.Recipients {
		if r.Address != want[i].Address || r.Orig != want[i].Orig || r.Notify != want[i].Notify || r.ORCPT != want[i].ORCPT {
			t.Errorf("recipient %d: %+v, want %+v", i, r, want[i])
		}
	}
	ts.logHas(t, "NOQUEUE: hold: RCPT from localhost[127.0.0.1]: <a@b.example>: Sender address triggers HOLD action; from=<a@b.example> to=<root@mail.example.test> proto=ESMTP helo=<client.example>\n")
}

// smtpd_forbid_bare_newline, as Postfix 3.7.11 (compat/oracle): with
// normalize only <CR><LF>.<CR><LF> ends DATA; with reject a bare LF in
// the message is refused after its end, and in a command ends the
// session; $mynetworks clients are spared.
func TestBareNewline(t *testing.T) {
	ts := start(t, "smtpd_forbid_bare_newline = normalize\nmynetworks = 10.0.0.0/8\n")
	dialog(t, ts.addr, heloData+`> Subject: y\r\n\r\nz\n.\nRSET\r\n.
250 2.0.0 Ok: queued as *
`)
	if got := ts.queued(t); !strings.Contains(got, "\nz\n\nRSET\n") {
		t.Errorf("queued:\n%s", got)
	}
	reject := heloData + `> Subject: y\r\n\r\nz\n.\nRSET\r\n.
550 5.5.2 mail.example.test Error: bare <LF> received
> NOOP\nNOOP
550 5.5.2 mail.example.test Error: bare <LF> received
`
	ts = start(t, "smtpd_forbid_bare_newline = reject\nmynetworks = 10.0.0.0/8\n")
	dialog(t, ts.addr, reject)
	if log := ts.maillog(t); !regexp.MustCompile(`]: [0-9A-F]+: reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: bare <LF> received; from=<a@b\.example> to=<root@mail\.example\.test> proto=SMTP helo=<c\.example>\n`).MatchString(log) {
		t.Errorf("maillog:\n%s", log)
	}
	ts = start(t, "smtpd_forbid_bare_newline = reject\nmynetworks = 127.0.0.0/8\n")
	// As with smtpd_forbid_bare_newline = no: "z\n.\n" ends the
	// message, and the last "." is no command.
	exempt, _, _ := strings.Cut(reject, "550 5.5.2")
	dialog(t, ts.addr, exempt+"250 2.0.0 Ok: queued as *\n250 2.0.0 Ok\n221 2.7.0 Error: I can break rules, too. Goodbye.\n")
}

// smtpd_client_connection_count_limit: the client past the limit gets
// 421 instead of the banner; one in smtpd_client_event_limit_exceptions
// ($mynetworks) is not limited; a closed session frees its place.
func TestConnectionCountLimit(t *testing.T) {
	banner := func(addr string) (string, net.Conn) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line, c
	}
	for _, c := range []struct {
		extra   string
		limited bool
	}{
		{"mynetworks = 10.0.0.0/8\nsmtpd_client_connection_count_limit = 1\n", true},
		{"mynetworks = 127.0.0.0/8\nsmtpd_client_connection_count_limit = 1\n", false},
	} {
		ts := start(t, c.extra)
		first, c1 := banner(ts.addr)
		second, c2 := banner(ts.addr)
		if !strings.HasPrefix(first, "220 ") {
			t.Fatalf("first banner %q", first)
		}
		if want := "421 4.7.0 mail.example.test Error: too many connections from 127.0.0.1\r\n"; c.limited && second != want {
			t.Errorf("%s: second connection got %q, want %q", c.extra, second, want)
		} else if !c.limited && !strings.HasPrefix(second, "220 ") {
			t.Errorf("%s: exempt client got %q", c.extra, second)
		}
		c2.Close()
		c1.Close()
		if c.limited {
			time.Sleep(200 * time.Millisecond)
			if third, c3 := banner(ts.addr); !strings.HasPrefix(third, "220 ") {
				t.Errorf("after the first session ended: %q", third)
			} else {
				c3.Close()
			}
			ts.logHas(t, "warning: Connection concurrency limit exceeded: 2 from localhost[127.0.0.1] for service smtp")
		}
	}
}
