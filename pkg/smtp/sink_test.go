package smtp

import (
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/delivery"
)

// startSink runs Debian's smtp-sink (the oracle).
var startSink = oracle.StartSink

// hop is the next hop [ip]:port of a listener at host:port.
func hop(addr string) string {
	h, p, _ := net.SplitHostPort(addr)
	return "[" + h + "]:" + p
}

// testClient is a Client with Postfix's defaults, logging into a buffer.
func testClient(t testing.TB, role string, set func(*Settings)) (*Client, *logBuf) {
	t.Helper()
	st, err := SettingsFrom(role, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.MyHostname, st.HeloName = "mail.example.test", "mail.example.test"
	if set != nil {
		set(&st)
	}
	lb := &logBuf{}
	c := &Client{Settings: st, Logf: lb.logf}
	t.Cleanup(c.Close)
	return c, lb
}

type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logBuf) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

const testBody = "From: sender@example.test\nTo: a@example.org\nSubject: hello\n\nline one\n.dotted line\nlast line\n"

func testMessage(body string, rcpts ...string) *delivery.Request {
	m := &delivery.Request{QueueID: "4ABCDEF012", Sender: "sender@example.test", Size: int64(len(body)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }}
	for i, r := range rcpts {
		m.Recipients = append(m.Recipients, delivery.Recipient{Address: r, Index: i})
	}
	return m
}

func TestDeliverRelayhost(t *testing.T) {
	s := startSink(t, "127.0.0.2")
	c, log := testClient(t, "smtp", nil)
	res := c.Deliver(context.Background(), hop(s.Addr), testMessage(testBody, "a@example.org", "b@example.org"))
	_, port, _ := net.SplitHostPort(s.Addr)
	relay := "127.0.0.2[127.0.0.2]:" + port
	for _, r := range res {
		if r.Status != Sent || r.Relay != relay || r.DSN != "2.0.0" || r.Text != "250 2.0.0 Ok" {
			t.Errorf("result %+v", r)
		}
	}
	// Postfix's line: postfix/smtp[PID]: ID: to=<x@y>, relay=h[ip]:port, delay=, delays=a/b/c/d, dsn=, status=sent (reply)
	line := regexp.MustCompile(`^4ABCDEF012: to=<a@example\.org>, relay=127\.0\.0\.2\[127\.0\.0\.2\]:` + port +
		`, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok\)$`)
	if l := log.all(); len(l) != 2 || !line.MatchString(l[0]) || !strings.Contains(l[1], "to=<b@example.org>") {
		t.Errorf("log:\n%s", strings.Join(l, "\n"))
	}
	got := s.Read(t)
	// Both recipients in one transaction, the content dot-stuffed and
	// unstuffed back by the sink as it was.
	if n := strings.Count(got, "X-Mail-Args:"); n != 1 {
		t.Errorf("%d transactions, want 1:\n%s", n, got)
	}
	if !strings.Contains(got, "X-Rcpt-Args: <a@example.org> ORCPT=rfc822;a@example.org\nX-Rcpt-Args: <b@example.org> ORCPT=rfc822;b@example.org\n") {
		t.Errorf("recipients:\n%s", got)
	}
	if !strings.Contains(got, "X-Helo-Args: mail.example.test\n") || !strings.HasSuffix(got, "\n"+testBody+"\n") {
		t.Errorf("content:\n%s", got)
	}
}

func TestDeliverRefused(t *testing.T) {
	port := oracle.FreePort(t, "127.0.0.2")
	c, log := testClient(t, "smtp", nil)
	res := c.Deliver(context.Background(), fmt.Sprintf("[127.0.0.2]:%d", port), testMessage(testBody, "a@example.org"))
	want := fmt.Sprintf("connect to 127.0.0.2[127.0.0.2]:%d: Connection refused", port)
	if r := res[0]; r.Status != Deferred || r.DSN != "4.4.1" || r.Text != want || r.Relay != "none" || !r.Dead {
		t.Errorf("result %+v", r)
	}
	if l := log.all(); len(l) != 1 || !strings.Contains(l[0], "to=<a@example.org>, relay=none, delay=") ||
		!strings.HasSuffix(l[0], "dsn=4.4.1, status=deferred ("+want+")") {
		t.Errorf("log %q", l)
	}
}

func TestDeliverRejects(t *testing.T) {
	for _, c := range []struct {
		opt    string
		status Status
		text   string
	}{
		{"-r", Deferred, "450 4.3.0 Error: command failed (in reply to RCPT TO command)"},
		{"-f", Bounced, "500 5.3.0 Error: command failed (in reply to RCPT TO command)"},
	} {
		s := startSink(t, "127.0.0.2", c.opt, "RCPT")
		cl, log := testClient(t, "smtp", nil)
		res := cl.Deliver(context.Background(), hop(s.Addr), testMessage(testBody, "a@example.org", "b@example.org"))
		for _, r := range res {
			if r.Status != c.status || r.Text != "host 127.0.0.2[127.0.0.2] said: "+c.text || r.Dead {
				t.Errorf("%s: result %+v", c.opt, r)
			}
		}
		if l := log.all(); len(l) != 2 || !strings.Contains(l[0], ", status="+c.status.String()+" (host 127.0.0.2[127.0.0.2] said: "+c.text+")") {
			t.Errorf("%s: log %q", c.opt, l)
		}
		if got := s.Read(t); strings.Contains(got, "X-Mail-Args") {
			t.Errorf("%s: a message reached the sink:\n%s", c.opt, got)
		}
	}
}

// A server that rejects one command for the whole transaction: every
// recipient gets the reply, named after the command.
func TestDeliverDataRejected(t *testing.T) {
	s := startSink(t, "127.0.0.2", "-f", ".")
	c, _ := testClient(t, "smtp", nil)
	res := c.Deliver(context.Background(), hop(s.Addr), testMessage(testBody, "a@example.org", "b@example.org"))
	for _, r := range res {
		if r.Status != Bounced || r.DSN != "5.3.0" || r.Text != "host 127.0.0.2[127.0.0.2] said: 500 5.3.0 Error: command failed (in reply to end of DATA command)" {
			t.Errorf("result %+v", r)
		}
	}
}

func TestDeliverGreetingTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // says nothing
		}
	}()
	c, _ := testClient(t, "smtp", func(s *Settings) { s.HeloTimeout = 300 * time.Millisecond })
	res := c.Deliver(context.Background(), hop(l.Addr().String()), testMessage(testBody, "a@example.org"))
	want := "conversation with 127.0.0.2[127.0.0.2] timed out while receiving the initial server greeting"
	if r := res[0]; r.Status != Deferred || r.Text != want || r.DSN != "4.4.2" {
		t.Errorf("result %+v", r)
	}
}

func TestDeliverConnectionCache(t *testing.T) {
	s := startSink(t, "127.0.0.2", "-c")
	c, _ := testClient(t, "smtp", nil)
	for i := 0; i < 3; i++ {
		msg := testMessage(testBody, "a@example.org")
		msg.ConnStore = true // more mail waits for the destination
		res := c.Deliver(context.Background(), hop(s.Addr), msg)
		if res[0].Status != Sent {
			t.Fatalf("delivery %d: %+v", i, res[0])
		}
	}
	c.Close() // QUIT: the sink counts the session
	// smtp-sink -c counts "sess=N quit=N mesg=N" when a session ends.
	var last string
	for i := 0; i < 250 && !strings.Contains(last, "mesg=3"); i++ {
		time.Sleep(20 * time.Millisecond)
		last = s.Counters()
	}
	// The first session is startSink's probe, which says nothing.
	if last != "sess=2 quit=1 mesg=3" {
		t.Errorf("smtp-sink counted %q, want three messages in one session", last)
	}
}

// Without more mail waiting for the destination (no ConnStore), a
// session ends with QUIT as soon as its message is sent, as Postfix's
// connection_cache_on_demand: nothing is cached.
func TestDeliverQuitsWithoutBacklog(t *testing.T) {
	s := startSink(t, "127.0.0.2", "-c")
	c, _ := testClient(t, "smtp", nil)
	for i := 0; i < 2; i++ {
		res := c.Deliver(context.Background(), hop(s.Addr), testMessage(testBody, "a@example.org"))
		if res[0].Status != Sent {
			t.Fatalf("delivery %d: %+v", i, res[0])
		}
	}
	var last string
	for i := 0; i < 250 && !strings.Contains(last, "mesg=2"); i++ {
		time.Sleep(20 * time.Millisecond)
		last = s.Counters()
	}
	// Counted before any Close: each session said QUIT by itself.
	if last != "sess=3 quit=2 mesg=2" {
		t.Errorf("smtp-sink counted %q, want two sessions, each ended with QUIT", last)
	}
}

func TestDeliverLMTPUnix(t *testing.T) {
	s := startSink(t, "unix:", "-L")
	c, log := testClient(t, "lmtp", nil)
	res := c.Deliver(context.Background(), "unix:"+s.Addr, testMessage(testBody, "a@example.org", "b@example.org"))
	for _, r := range res {
		if r.Status != Sent || r.Relay != "mail.example.test["+s.Addr+"]" {
			t.Errorf("result %+v", r)
		}
	}
	if l := log.all(); len(l) != 2 {
		t.Errorf("log %q", l)
	}
	if got := s.Read(t); !strings.Contains(got, "X-Client-Proto: LMTP") || strings.Count(got, "X-Rcpt-Args") != 2 {
		t.Errorf("sink:\n%s", got)
	}
}

func TestDeliverMessageTooBig(t *testing.T) {
	// smtp-sink announces no SIZE: a server that does, played by a
	// listener that answers EHLO with SIZE 10.
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skip(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "220 big ESMTP\r\n")
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(string(buf[:n])); {
			case strings.HasPrefix(cmd, "EHLO"):
				io.WriteString(conn, "250-big\r\n250-PIPELINING\r\n250 SIZE 10\r\n")
			case strings.HasPrefix(cmd, "QUIT"):
				io.WriteString(conn, "221 bye\r\n")
				return
			default:
				io.WriteString(conn, "250 ok\r\n")
			}
		}
	}()
	c, _ := testClient(t, "smtp", func(s *Settings) { s.CacheOnDemand = false })
	res := c.Deliver(context.Background(), hop(l.Addr().String()), testMessage(testBody, "a@example.org"))
	want := fmt.Sprintf("message size %d exceeds size limit 10 of server 127.0.0.2[127.0.0.2]", len(testBody))
	if r := res[0]; r.Status != Bounced || r.DSN != "5.3.4" || r.Text != want {
		t.Errorf("result %+v", r)
	}
}

// sendmail -bv: the RCPT replies answer; no message is sent.
func TestDeliverVerify(t *testing.T) {
	for _, opts := range [][]string{nil, {"-p"}} {
		s := startSink(t, "127.0.0.2", opts...)
		c, log := testClient(t, "smtp", nil)
		m := testMessage(testBody, "a@example.org")
		m.Verify = true
		if r := c.Deliver(context.Background(), hop(s.Addr), m)[0]; r.Status != Sent || r.Text != "250 2.1.5 Ok" {
			t.Errorf("%v: result %+v", opts, r)
		}
		if l := log.all(); len(l) != 1 || !strings.HasSuffix(l[0], "dsn=2.1.5, status=deliverable (250 2.1.5 Ok)") {
			t.Errorf("%v: log %q", opts, l)
		}
		if got := s.Read(t); got != "" {
			t.Errorf("%v: the sink got a message:\n%s", opts, got)
		}
	}
}

// LMTP over TCP (lmtp:inet:host:port), one reply per recipient after
// DATA: the sink rejects none, so both are sent.
func TestDeliverLMTPInet(t *testing.T) {
	s := startSink(t, "127.0.0.1", "-L")
	c, log := testClient(t, "lmtp", nil)
	_, port, _ := net.SplitHostPort(s.Addr)
	res := c.Deliver(context.Background(), "inet:"+s.Addr, testMessage(testBody, "a@example.org", "b@example.org"))
	for _, r := range res {
		if r.Status != Sent || r.Relay != "127.0.0.1[127.0.0.1]:"+port || r.Text != "250 2.2.0 Ok" {
			t.Errorf("result %+v", r)
		}
	}
	if l := log.all(); len(l) != 2 {
		t.Errorf("log %q", l)
	}
	if got := s.Read(t); !strings.Contains(got, "X-Client-Proto: LMTP") || strings.Count(got, "X-Rcpt-Args") != 2 {
		t.Errorf("sink:\n%s", got)
	}
}

// A delivery whose queue manager has gone away (ctx done) ends at once,
// deferred, instead of waiting for a server that is slow to answer.
func TestDeliverCancelled(t *testing.T) {
	s := startSink(t, "127.0.0.2", "-w", "60") // DATA is answered after a minute
	c, _ := testClient(t, "smtp", func(s *Settings) { s.DataInit = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	r := c.Deliver(ctx, hop(s.Addr), testMessage(testBody, "a@example.org"))[0]
	if r.Status != Deferred || !strings.Contains(r.Text, " timed out while sending ") {
		t.Errorf("result %+v", r)
	}
	if got := s.Read(t); got != "" {
		t.Errorf("the sink got a message:\n%s", got)
	}
}
