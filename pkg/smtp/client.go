package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"postdove/pkg/delivery"
	"postdove/pkg/syserr"
)

// The outcomes and results are the delivery contract's.
type (
	Status = delivery.Status
	Result = delivery.Result
)

// The outcomes.
const (
	Sent     = delivery.Sent
	Deferred = delivery.Deferred
	Bounced  = delivery.Bounced
)

// Client delivers messages as smtp(8) or lmtp(8). A Client is safe for
// concurrent use; idle sessions are shared through its connection cache.
type Client struct {
	Settings Settings
	// Resolver looks up MX and address records (net.DefaultResolver when
	// nil).
	Resolver Resolver
	// IsSelf says whether an MX host (name and address) is this machine
	// (inet_interfaces, proxy_interfaces); nil: never.
	IsSelf func(name string, ip net.IP) bool
	// IsLocalDomain says whether a domain is one this machine receives
	// mail for (mydestination ...): mail routed to it by MX loops.
	IsLocalDomain func(domain string) bool
	// Logf writes a maillog record (postfix/smtp[PID]: ...); nil: none.
	Logf func(format string, args ...any)
	// Dial opens a connection (a net.Dialer's DialContext when nil).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	cache connCache
}

// failure is a problem that ends a session attempt, with Postfix's text.
type failure struct {
	text string
	dsn  string
	// next: another server may be tried (connection and 4xx problems,
	// and 5xx greetings as Postfix treats them).
	next bool
	// dead: the destination failed as a whole (lookup, connection,
	// greeting, handshake, lost connection), not one transaction.
	dead bool
}

func (f *failure) Error() string { return f.text }

func (f *failure) status() Status {
	if strings.HasPrefix(f.dsn, "5") {
		return Bounced
	}
	return Deferred
}

// Deliver sends msg to the next hop dest (relayhost, transport nexthop or
// the recipient domain) and returns one result per recipient, logging
// each as Postfix does.
func (c *Client) Deliver(ctx context.Context, dest string, msg *delivery.Request) []Result {
	start := time.Now()
	lmtp := c.Settings.Role == "lmtp"
	results := make([]Result, len(msg.Recipients))
	for i, r := range msg.Recipients {
		results[i] = Result{Recipient: r, Final: r.Address, Status: Deferred, Relay: "none"}
	}
	done := make([]bool, len(results))
	finish := func(i int, st Status, dsn, text, relay string, setup time.Duration) {
		results[i].Status, results[i].DSN, results[i].Text, results[i].Relay = st, dsn, text, relay
		done[i] = true
		c.logResult(msg, results[i], start, setup)
	}
	// failAll gives f to every recipient not done. A deferral before any
	// recipient was tried marks the destination dead for the queue
	// manager (Postfix's "site dead" feedback).
	failAll := func(f *failure, relay string, setup time.Duration) []Result {
		dead := f.dead && f.status() == Deferred && !anyDone(done)
		for i := range results {
			if !done[i] {
				results[i].Dead = dead
				finish(i, f.status(), f.dsn, f.text, relay, setup)
			}
		}
		return results
	}

	n, err := ParseNexthop(dest, lmtp)
	if err != nil {
		return failAll(&failure{text: err.Error(), dsn: "4.3.5"}, "none", time.Since(start))
	}
	if !n.NoMX && c.IsLocalDomain != nil && c.IsLocalDomain(n.Host) && n.Unix == "" {
		return failAll(&failure{text: errLoop{n.Host}.Error(), dsn: "5.4.6"}, "none", time.Since(start))
	}
	var addrs []Address
	if n.Unix != "" {
		addrs = []Address{{Name: c.Settings.MyHostname, Port: 0}}
	} else {
		res := c.Resolver
		if res == nil {
			res = net.DefaultResolver
		}
		addrs, err = resolve(ctx, res, n, c.Settings.MXAddressLimit, c.IsSelf)
		var le *lookupError
		var loop errLoop
		switch {
		case errors.As(err, &loop):
			return failAll(&failure{text: loop.Error(), dsn: "5.4.6"}, "none", time.Since(start))
		case errors.As(err, &le):
			return failAll(&failure{text: le.text, dsn: le.dsn, dead: true}, "none", time.Since(start))
		}
	}

	var last *failure
	lastRelay := "none"
	sessions := 0
	for ai := 0; ai < len(addrs); ai++ {
		a := addrs[ai]
		if c.Settings.MXSessionLimit > 0 && sessions >= c.Settings.MXSessionLimit {
			break
		}
		key := cacheKey(n, a)
		s := c.cache.get(key)
		reused := s != nil
		if s == nil {
			var f *failure
			s, f = c.open(ctx, n, a, c.Settings.TLSLevel)
			if f != nil && f.dsn == "tls-fallback" {
				// Opportunistic TLS failed: a new session in plaintext.
				s.close()
				s, f = c.open(ctx, n, a, "none")
			}
			if f != nil {
				f.dead = true
				last, lastRelay = f, "none"
				if s != nil {
					lastRelay = s.relay()
					s.close()
				}
				if !f.next {
					break
				}
				if s != nil {
					sessions++
				}
				continue
			}
			sessions++
		}
		setup := time.Since(start)
		// The queue manager gone (ctx done: it will not read the results),
		// or the agent stopping: the session's I/O ends at once.
		s.ctx = ctx
		stopWatch := context.AfterFunc(ctx, func() { s.conn.SetDeadline(time.Unix(1, 0)) })
		f, retry := c.transaction(s, msg, results, done, finish, setup, reused)
		stopWatch()
		if retry && reused {
			// The cached session had gone stale before anything was
			// accepted: start a fresh one with this address.
			s.close()
			ai--
			continue
		}
		if f != nil {
			last, lastRelay = f, s.relay()
			s.close()
			if f.next && !anyDone(done) {
				continue
			}
			break
		}
		if c.Settings.CacheOnDemand && msg.ConnStore && c.Settings.CacheTime > 0 && s.healthy && time.Since(s.born) < c.Settings.ReuseTime {
			c.cache.put(key, s, c.Settings.CacheTime)
		} else {
			s.quit()
		}
		return results
	}
	if last == nil {
		last = &failure{text: "server unavailable or unable to receive mail", dsn: "4.4.1", dead: true}
	}
	return failAll(last, lastRelay, time.Since(start))
}

func anyDone(done []bool) bool {
	for _, d := range done {
		if d {
			return true
		}
	}
	return false
}

// logResult writes the to= line of r: delays c is setup, the time to
// the session's first transaction; d the rest.
func (c *Client) logResult(msg *delivery.Request, r Result, start time.Time, setup time.Duration) {
	if c.Logf != nil {
		c.Logf("%s", delivery.LogLine(*msg, r, setup, start.Add(setup)))
	}
}

// Handle is the agent's delivery.Handler for private/smtp, private/relay,
// private/lmtp ...: it delivers req to its next hop, or to the domain of
// its recipients when the queue manager gave none.
func (c *Client) Handle(ctx context.Context, req delivery.Request) []delivery.Result {
	dest := req.Nexthop
	if dest == "" && len(req.Recipients) > 0 {
		a := req.Recipients[0].Address
		dest = a[strings.LastIndexByte(a, '@')+1:]
	}
	return c.Deliver(ctx, dest, &req)
}

// session is one connection to a server, after the greeting and EHLO.
type session struct {
	c       *Client
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	addr    Address
	unix    string
	lmtp    bool
	ext     map[string]string // EHLO keywords (upper case) and their parameters
	esmtp   bool
	tls     bool
	healthy bool
	nexthop string    // the next-hop host or domain (secure's name to match)
	born    time.Time // when it connected (smtp_connection_reuse_time_limit)
	// ctx ends the session's I/O when done (nil: never).
	ctx context.Context
	// wtimeout bounds each write to the server.
	wtimeout time.Duration
}

// deadlineWriter writes to the session's connection, each write within
// the session's write timeout.
type deadlineWriter struct{ s *session }

func (d deadlineWriter) Write(p []byte) (int, error) {
	if d.s.ctx != nil && d.s.ctx.Err() != nil {
		return 0, os.ErrDeadlineExceeded
	}
	if d.s.wtimeout > 0 {
		d.s.conn.SetWriteDeadline(time.Now().Add(d.s.wtimeout))
	}
	return d.s.conn.Write(p)
}

func (s *session) relay() string {
	if s.unix != "" {
		return fmt.Sprintf("%s[%s]", s.addr.Name, s.unix)
	}
	return s.addr.Relay()
}

func (s *session) hostAddr() string {
	if s.unix != "" {
		return fmt.Sprintf("%s[%s]", s.addr.Name, s.unix)
	}
	return s.addr.HostAddr()
}

// open connects to a, reads the greeting, says EHLO (LHLO) and starts TLS
// as level asks. A failure with dsn "tls-fallback" asks for a plaintext
// retry.
func (c *Client) open(ctx context.Context, n Nexthop, a Address, level string) (*session, *failure) {
	st := c.Settings
	dial := c.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: st.ConnectTimeout}
		dial = d.DialContext
	}
	network, target := "tcp", net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
	if n.Unix != "" {
		network, target = "unix", n.Unix
	}
	conn, err := dial(ctx, network, target)
	if err != nil {
		where := a.Relay()
		if n.Unix != "" {
			where = n.Unix
		}
		text := syserr.Text(err)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			text = "Connection timed out"
		}
		return nil, &failure{text: fmt.Sprintf("connect to %s: %s", where, text), dsn: "4.4.1", next: true}
	}
	s := &session{c: c, conn: conn, r: bufio.NewReaderSize(conn, 4096), addr: a, unix: n.Unix, lmtp: st.Role == "lmtp", born: time.Now()}
	s.w = bufio.NewWriterSize(deadlineWriter{s}, 32*1024)
	s.ctx = ctx
	stopWatch := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stopWatch()
	rep, f := s.read(st.HeloTimeout, "receiving the initial server greeting")
	if f != nil {
		return s, f
	}
	if rep.Class() != 2 {
		return s, &failure{text: fmt.Sprintf("host %s refused to talk to me: %s", s.hostAddr(), rep.Text()),
			dsn: rep.Status(), next: true}
	}
	if f := s.hello(); f != nil {
		return s, f
	}
	switch level {
	case "dane":
		// Without DNSSEC-validated TLSA records (postdove validates
		// none) Postfix's dane level is may.
		level = "may"
	case "dane-only", "fingerprint":
		return s, &failure{text: fmt.Sprintf("TLS security level %s is not supported", level), dsn: "4.7.5"}
	}
	s.nexthop = n.Host
	wantTLS := level != "" && level != "none" && n.Unix == "" || (n.Unix != "" && level != "" && level != "none" && level != "may")
	if !wantTLS {
		s.healthy = true
		return s, nil
	}
	if _, ok := s.ext["STARTTLS"]; !ok {
		if level == "may" {
			s.healthy = true
			return s, nil
		}
		return s, &failure{text: fmt.Sprintf("TLS is required, but was not offered by host %s", s.hostAddr()), dsn: "4.7.4", next: true}
	}
	if f := s.startTLS(level); f != nil {
		return s, f
	}
	s.healthy = true
	return s, nil
}

// hello says EHLO (LHLO for LMTP), falling back to HELO when the server
// rejects EHLO, and records the extensions offered.
func (s *session) hello() *failure {
	st := s.c.Settings
	verb := "EHLO"
	if s.lmtp {
		verb = "LHLO"
	}
	rep, f := s.cmd(st.HeloTimeout, "performing the "+verb+" handshake", "%s %s", verb, st.HeloName)
	if f != nil {
		return f
	}
	if rep.Class() != 2 && !s.lmtp {
		rep, f = s.cmd(st.HeloTimeout, "performing the HELO handshake", "HELO %s", st.HeloName)
		if f != nil {
			return f
		}
		verb = "HELO"
	}
	if rep.Class() != 2 {
		return &failure{text: fmt.Sprintf("host %s said: %s (in reply to %s command)", s.hostAddr(), rep.Text(), verb),
			dsn: rep.Status(), next: true}
	}
	s.ext = map[string]string{}
	s.esmtp = verb != "HELO"
	if s.esmtp {
		for _, l := range rep.Lines[1:] {
			k, v, _ := strings.Cut(l, " ")
			s.ext[strings.ToUpper(k)] = v
		}
	}
	return nil
}

// startTLS runs STARTTLS (RFC 3207) and says EHLO again.
func (s *session) startTLS(level string) *failure {
	st := s.c.Settings
	rep, f := s.cmd(st.HeloTimeout, "receiving the STARTTLS response", "STARTTLS")
	if f != nil {
		return f
	}
	if rep.Class() != 2 {
		if level == "may" {
			return &failure{dsn: "tls-fallback", next: true}
		}
		return &failure{text: fmt.Sprintf("TLS is required, but host %s refused to start TLS: %s", s.hostAddr(), rep.Text()),
			dsn: "4.7.4", next: true}
	}
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: s.addr.Name, MinVersion: tls.VersionTLS10}
	if net.ParseIP(s.addr.Name) != nil {
		cfg.ServerName = ""
	}
	tc := tls.Client(s.conn, cfg)
	if st.HeloTimeout > 0 {
		tc.SetDeadline(time.Now().Add(st.HeloTimeout))
	}
	if err := tc.Handshake(); err != nil {
		if level == "may" {
			return &failure{dsn: "tls-fallback", next: true}
		}
		return &failure{text: "Cannot start TLS: handshake failure", dsn: "4.7.5", next: true}
	}
	s.conn, s.tls = tc, true
	s.r.Reset(tc)
	s.w.Reset(deadlineWriter{s})
	cs := tc.ConnectionState()
	word := trust(cs, st.CAFile)
	if level == "verify" || level == "secure" {
		// smtp_tls_verify_cert_match = hostname (the server's name),
		// smtp_tls_secure_cert_match = nexthop.
		name := s.addr.Name
		if level == "secure" {
			name = s.nexthop
		}
		switch {
		case word != "Trusted":
			s.healthy = false
			return &failure{text: "Server certificate not trusted", dsn: "4.7.5", next: true}
		case cs.PeerCertificates[0].VerifyHostname(name) != nil:
			s.healthy = false
			return &failure{text: "Server certificate not verified", dsn: "4.7.5", next: true}
		}
		word = "Verified"
	}
	if s.c.Logf != nil && st.TLSLogLevel >= 1 {
		s.c.Logf("%s TLS connection established to %s: %s", word, s.addr.Relay(), describeTLS(cs))
	}
	return s.hello()
}

// read reads one reply within timeout; a timeout or a lost connection is
// Postfix's "conversation with ... timed out while ..." or "lost
// connection with ... while ...".
func (s *session) read(timeout time.Duration, while string) (Reply, *failure) {
	if s.ctx != nil && s.ctx.Err() != nil {
		s.healthy = false
		return Reply{}, s.ioFailure(os.ErrDeadlineExceeded, while)
	}
	if timeout > 0 {
		s.conn.SetReadDeadline(time.Now().Add(timeout))
	}
	rep, err := ReadReply(s.r)
	if err != nil {
		s.healthy = false
		return rep, s.ioFailure(err, while)
	}
	return rep, nil
}

func (s *session) ioFailure(err error, while string) *failure {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return &failure{text: fmt.Sprintf("conversation with %s timed out while %s", s.hostAddr(), while), dsn: "4.4.2", next: true, dead: true}
	case errors.Is(err, errBadReply):
		return &failure{text: fmt.Sprintf("malformed reply from %s while %s", s.hostAddr(), while), dsn: "5.5.2", next: true}
	}
	return &failure{text: fmt.Sprintf("lost connection with %s while %s", s.hostAddr(), while), dsn: "4.4.2", next: true, dead: true}
}

// cmd sends one command and reads its reply.
func (s *session) cmd(timeout time.Duration, while, format string, args ...any) (Reply, *failure) {
	if f := s.send(timeout, while, format, args...); f != nil {
		return Reply{}, f
	}
	if f := s.flush(timeout, while); f != nil {
		return Reply{}, f
	}
	return s.read(timeout, while)
}

// send buffers one command line.
func (s *session) send(timeout time.Duration, while, format string, args ...any) *failure {
	fmt.Fprintf(s.w, format, args...)
	s.w.WriteString("\r\n")
	return nil
}

func (s *session) flush(timeout time.Duration, while string) *failure {
	s.wtimeout = timeout
	if err := s.w.Flush(); err != nil {
		s.healthy = false
		return s.ioFailure(err, while)
	}
	return nil
}

// quit ends the session politely.
func (s *session) quit() {
	if s.healthy {
		s.cmd(min(s.c.Settings.QuitTimeout, 5*time.Second), "sending QUIT", "QUIT")
	}
	s.close()
}

func (s *session) close() {
	if s != nil && s.conn != nil {
		s.conn.Close()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isConnReset is a write on a connection the server has closed.
func isConnReset(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed)
}
