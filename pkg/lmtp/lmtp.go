// Package lmtp is Dovecot's LMTP server (lmtp(8), "service lmtp") on
// go-smtp's LMTP mode: Postfix's mailbox_transport or a transport_maps
// entry "lmtp:unix:private/dovecot-lmtp" hands it the mail for local
// users, and it saves each recipient's copy through the same store and
// rules as dovecot-lda (pkg/lda's Deliver), in a process of its own that
// runs with that user's uid and gid, never as root.
//
// As Dovecot 2.3's:
//   - RCPT looks the user up in the userdbs (pkg/auth; the address as
//     given, its +detail taken off by recipient_delimiter) and refuses an
//     unknown one with "550 5.1.1 <x> User doesn't exist: x".
//   - After DATA there is one reply per RCPT: "250 2.0.0 <x> ID Saved",
//     ID the transaction's (the session id, ":T2" and on for later
//     transactions of the connection) with ":R<n>" for the n-th RCPT
//     after the first; a recipient given twice gets one copy and the
//     same reply twice.
//   - Each copy starts with Return-Path, Delivered-To (one recipient
//     only) and a Received header (lmtp_add_received_header).
//   - The log lines: "lmtp(PID): Connect from local", "lmtp(user)<PID>
//     <ID>: msgid=<...>: saved mail to INBOX", "lmtp(PID): Disconnect
//     from local: Logged out (state=READY)" ("Connection closed" when
//     the client did not QUIT; the state GREETING, READY, MAIL FROM, RCPT
//     TO or DATA).
//
// Where it differs: the greeting, LHLO and the MAIL and RCPT success
// texts are go-smtp's ("220 host LMTP Service Ready", "250 2.0.0 Roger,
// ..."), with its extensions; clients look at the codes only.
package lmtp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"postdove/pkg/auth"
	"postdove/pkg/doveconf"
)

// Serve answers LMTP on ln until ln is closed, with cfg's lmtp settings
// and userdbs; logf writes one log line (Dovecot's text, without the
// level for Info lines). It runs as root: each delivery runs in a child
// process with the recipient's uid and gid.
func Serve(ln net.Listener, cfg *doveconf.Config, logf func(format string, args ...any)) error {
	set := cfg.For(doveconf.Match{Protocol: "lmtp"})
	a, err := auth.New(set)
	if err != nil {
		return err
	}
	a.Logf = func(format string, args ...any) { logf("Error: "+format, args...) }
	b := &backend{set: set, auth: a, logf: logf, hostname: set.Hostname(), pid: os.Getpid()}
	s := smtp.NewServer(b)
	s.LMTP = true
	s.Domain = b.hostname
	s.ErrorLog = errorLog{logf}
	s.ReadTimeout = 5 * time.Minute // Dovecot's lmtp client idle timeout
	return s.Serve(&listener{Listener: ln, b: b})
}

type errorLog struct{ logf func(string, ...any) }

func (e errorLog) Printf(format string, args ...any) { e.logf("Error: "+format, args...) }
func (e errorLog) Println(args ...any)               { e.logf("Error: %s", fmt.Sprint(args...)) }

type backend struct {
	set      *doveconf.Settings
	auth     *auth.Authenticator
	logf     func(string, ...any)
	hostname string
	pid      int
}

// listener wraps the accepted connections to log their start and end.
type listener struct {
	net.Listener
	b *backend
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &conn{Conn: c, b: l.b, from: remoteName(c), id: sessionID(), state: "GREETING"}
	l.b.logf("lmtp(%d): Connect from %s", l.b.pid, tc.from)
	return tc, nil
}

// remoteName is how Dovecot names the client: "local" on a unix socket.
func remoteName(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return "local"
}

// conn is one client connection: its session id, the state for the
// disconnect line, and whether the server said goodbye (QUIT).
type conn struct {
	net.Conn
	b     *backend
	from  string
	id    string
	once  sync.Once
	mu    sync.Mutex
	state string
	quit  bool
	trans int // transactions begun
}

func (c *conn) setState(s string) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

func (c *conn) Write(p []byte) (int, error) {
	if len(p) >= 4 && string(p[:4]) == "221 " {
		c.mu.Lock()
		c.quit = true
		c.mu.Unlock()
	}
	return c.Conn.Write(p)
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		reason := "Connection closed"
		if c.quit {
			reason = "Logged out"
		}
		state := c.state
		c.mu.Unlock()
		c.b.logf("lmtp(%d): Disconnect from %s: %s (state=%s)", c.b.pid, c.from, reason, state)
	})
	return c.Conn.Close()
}

// sessionID is a fresh Dovecot session id: 16 random bytes in base64
// without padding.
func sessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.TrimRight(base64.StdEncoding.EncodeToString(b[:]), "=")
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	tc, _ := c.Conn().(*conn)
	if tc == nil {
		// Not through Serve's listener (cannot happen): a conn of its own.
		tc = &conn{Conn: c.Conn(), b: b, from: remoteName(c.Conn()), id: sessionID()}
	}
	tc.setState("READY")
	return &session{b: b, c: c, tc: tc}, nil
}

// session is one connection's transactions.
type session struct {
	b      *backend
	c      *smtp.Conn
	tc     *conn
	id     string // the transaction's id
	from   string
	nrcpt  int // RCPT commands in this transaction
	rcpts  []*rcpt
	byAddr map[string]*rcpt
}

// rcpt is one accepted recipient.
type rcpt struct {
	addr string
	id   string
	user *auth.User
}

func (s *session) Reset() {
	s.from, s.nrcpt, s.rcpts, s.byAddr = "", 0, nil, nil
	s.tc.setState("READY")
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.Reset()
	s.tc.trans++
	s.id = s.tc.id
	if s.tc.trans > 1 {
		s.id += fmt.Sprintf(":T%d", s.tc.trans)
	}
	s.from = from
	s.tc.setState("MAIL FROM")
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.nrcpt++
	if r := s.byAddr[to]; r != nil {
		// The same recipient again: one copy, the same reply.
		s.rcpts = append(s.rcpts, r)
		return nil
	}
	name := stripDetail(to, s.b.set.Get("recipient_delimiter"))
	u, err := s.b.auth.Lookup(context.Background(), name)
	if err != nil {
		if auth.KindOf(err) == auth.UnknownUser {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
				Message: fmt.Sprintf("<%s> User doesn't exist: %s", to, name)}
		}
		s.b.logf("lmtp(%s)<%d><%s>: Error: Failed to lookup user %s: %v", name, s.b.pid, s.id, name, err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
			Message: fmt.Sprintf("<%s> Temporary internal error", to)}
	}
	id := s.id
	if s.nrcpt > 1 {
		id += fmt.Sprintf(":R%d", s.nrcpt)
	}
	r := &rcpt{addr: to, id: id, user: u}
	if s.byAddr == nil {
		s.byAddr = map[string]*rcpt{}
	}
	s.byAddr[to] = r
	s.rcpts = append(s.rcpts, r)
	s.tc.setState("RCPT TO")
	return nil
}

// stripDetail takes the +detail off an address's local part.
func stripDetail(addr, delims string) string {
	if delims == "" {
		return addr
	}
	local, domain, hasDomain := strings.Cut(addr, "@")
	if i := strings.IndexAny(local, delims); i > 0 {
		local = local[:i]
	}
	if hasDomain {
		return local + "@" + domain
	}
	return local
}

func (s *session) Data(r io.Reader) error {
	return s.LMTPData(r, nil)
}

// LMTPData spools the message, then saves a copy for each recipient and
// sets its reply.
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	s.tc.setState("DATA")
	defer s.tc.setState("READY")
	spool, err := os.CreateTemp("", "lmtp-")
	if err != nil {
		s.b.logf("Error: %v", err)
		return tempFail()
	}
	os.Remove(spool.Name())
	defer spool.Close()
	if _, err := io.Copy(spool, r); err != nil {
		return tempFail()
	}
	unique := 0
	for _, rc := range s.rcpts {
		if s.byAddr[rc.addr] == rc {
			unique++
		}
	}
	results := map[*rcpt]error{}
	for _, rc := range s.rcpts {
		res, done := results[rc]
		if !done {
			hdr := s.traceHeaders(rc, len(s.rcpts) == 1 && unique == 1)
			res = s.b.deliver(rc, s.from, hdr, spool)
			results[rc] = res
		}
		if status != nil {
			status.SetStatus(rc.addr, res)
		}
	}
	s.from, s.nrcpt, s.rcpts, s.byAddr = "", 0, nil, nil
	return nil
}

func tempFail() error {
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary internal error"}
}

// traceHeaders are the header fields Dovecot's lmtp puts before the
// message: Return-Path, Delivered-To and Received for a single
// recipient, Return-Path and Received without "for" for several.
func (s *session) traceHeaders(rc *rcpt, single bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <%s>\n", s.from)
	if single && s.b.set.Get("lmtp_hdr_delivery_address") != "none" {
		fmt.Fprintf(&b, "Delivered-To: %s\n", rc.addr)
	}
	if s.b.set.Bool("lmtp_add_received_header") {
		fmt.Fprintf(&b, "Received: from %s", s.c.Hostname())
		if s.tc.from != "local" {
			fmt.Fprintf(&b, " ([%s])", s.tc.from)
		}
		fmt.Fprintf(&b, "\n\tby %s with LMTP\n\tid %s\n\t(envelope-from <%s>)", s.b.hostname, s.id, s.from)
		if single {
			fmt.Fprintf(&b, "\n\tfor <%s>", rc.addr)
		}
		fmt.Fprintf(&b, "; %s\n", time.Now().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	return b.String()
}
