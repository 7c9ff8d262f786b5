package dovecot

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"postdove/pkg/auth"
)

// The login proxy: as Dovecot's imap-login and pop3-login, a passdb
// answer with the extra fields proxy=y (or proxy_maybe=y) and host=H
// makes the login process log in to the IMAP or POP3 server on H as the
// user, with the password the client gave (pkg/auth returns it as pass),
// answer the client's login with the backend's reply, and then relay
// the bytes both ways until either side closes.

// proxyFailureMsg is what a client is told when the backend cannot be
// reached or misbehaves (Dovecot's LOGIN_PROXY_FAILURE_MSG).
const proxyFailureMsg = "Account is temporarily unavailable."

// proxyTTL is the x-proxy-ttl the backend is sent, as Dovecot's
// LOGIN_PROXY_TTL minus the hop made here.
const proxyTTL = 4

// proxyRetry is the pause between two connection attempts.
const proxyRetry = time.Second

// proxyDest is where the passdb's fields send a session.
type proxyDest struct {
	host     string // as the passdb gave it
	ip       netip.Addr
	port     int
	user     string // destuser, else the user
	pass     string
	ssl      bool // ssl=yes: TLS from the start; starttls=yes: STARTTLS/STLS first
	starttls bool
	anyCert  bool // ssl=any-cert or starttls=any-cert: no certificate check
	timeout  time.Duration
}

// proxyFailure is how a proxy attempt ended without a session, which
// decides the client's reply as Dovecot's login_proxy_failure_type does.
type proxyFailure int

const (
	proxyConnect  proxyFailure = iota // unreachable, bad banner, server went away
	proxyConfig                       // the passdb's fields or the backend's setup are wrong
	proxyAuth                         // the backend refused the login; its reply was sent
	proxyTempFail                     // the backend refused the login for now
)

// proxied serves a login whose passdb answer asks for a proxy: it returns
// false when the session is to be served here (no proxy field, or
// proxy_maybe to this address and port). Otherwise the client has had
// its answer: on success c.done is set and c.relay runs the session; on
// failure the client is told and stays in the pre-login dialogue.
func (c *client) proxied(res auth.Result, tag string) bool {
	maybe := res.Flag("proxy_maybe")
	if !maybe && !res.Flag("proxy") {
		return false
	}
	d, failure := c.proxyDest(res, maybe)
	if d == nil && failure < 0 {
		return false
	}
	if d != nil {
		var srv *backend
		srv, failure = c.proxyLogin(d, tag)
		if srv != nil {
			c.done = true
			c.relay = func() { c.proxyRelay(d, srv) }
			return true
		}
	}
	c.proxyFailed(tag, failure)
	return true
}

// proxyLog writes a line with Dovecot's proxy prefix, "proxy(user): " or
// "proxy(user,ip:port): ", and the login fields after it.
func (c *client) proxyLog(d *proxyDest, level, format string, args ...any) {
	prefix := "proxy(" + c.user
	if d != nil && d.ip.IsValid() {
		prefix += "," + netip.AddrPortFrom(d.ip, uint16(d.port)).String()
	}
	c.m.log.logf(c.proto+"-login: ", level, "%s): %s: %s", prefix, fmt.Sprintf(format, args...), c.fields(0))
}

// proxyDest reads the proxy fields. A nil destination comes with the
// failure to report, or with -1 when proxy_maybe points here.
func (c *client) proxyDest(res auth.Result, maybe bool) (*proxyDest, proxyFailure) {
	d := &proxyDest{user: res.User, timeout: c.s.Duration("login_proxy_timeout")}
	d.host, _ = res.Field("host")
	// As Dovecot's auth: a proxy logs in to the backend with the
	// passdb's pass field, or else the password the client gave.
	d.pass = res.Password
	if v, ok := res.Field("pass"); ok {
		d.pass = v
	}
	if v, ok := res.Field("destuser"); ok && v != "" {
		d.user = v
	}
	for _, key := range []string{"ssl", "starttls"} {
		if v, ok := res.Field(key); ok {
			d.ssl, d.starttls = true, d.starttls || key == "starttls"
			d.anyCert = d.anyCert || v == "any-cert"
		}
	}
	port, hasPort := res.Field("port")
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			c.proxyLog(nil, "Error", "Auth service returned invalid port number: %s", port)
			return nil, proxyConfig
		}
		d.port = int(n)
	} else {
		d.port = map[string]int{"imap": 143, "pop3": 110}[c.proto]
		if d.ssl && !d.starttls {
			d.port = map[string]int{"imap": 993, "pop3": 995}[c.proto]
		}
	}
	if v, ok := res.Field("proxy_timeout"); ok {
		if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
			d.timeout = time.Duration(secs) * time.Second
		}
	}
	if d.timeout <= 0 {
		d.timeout = 30 * time.Second
	}
	if d.host == "" {
		c.proxyLog(nil, "Error", "host not given")
		return nil, proxyConfig
	}
	if d.pass == "" {
		c.proxyLog(nil, "Error", "password not given")
		return nil, proxyConfig
	}
	ip, err := netip.ParseAddr(d.host)
	if err != nil {
		// Dovecot's auth resolves a name (and passes it on as hostip).
		ctx, cancel := context.WithTimeout(context.Background(), d.timeout)
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", d.host)
		cancel()
		if err != nil || len(ips) == 0 {
			c.proxyLog(nil, "Error", "DNS lookup for %s failed: %v", d.host, err)
			return nil, proxyConnect
		}
		ip = ips[0]
	}
	d.ip = ip.Unmap()
	self := d.ip == c.local.Addr()
	for _, s := range strings.Fields(c.s.Get("auth_proxy_self")) {
		if a, err := netip.ParseAddr(s); err == nil && a.Unmap() == d.ip {
			self = true
		}
	}
	if maybe && self && (!hasPort || d.port == int(c.local.Port())) {
		return nil, -1
	}
	if d.ip == c.local.Addr() && d.port == int(c.local.Port()) && d.user == res.User {
		c.proxyLog(nil, "Error", "Proxying loops to itself")
		return nil, proxyConfig
	}
	return d, 0
}

// proxyFailed answers the client's login after a failed proxy attempt
// (an auth failure has had its answer from proxyLogin).
func (c *client) proxyFailed(tag string, f proxyFailure) {
	if f == proxyAuth || f == proxyTempFail {
		return // the attempt was counted when it began
	}
	if c.proto == "imap" {
		code := "UNAVAILABLE"
		if f == proxyConfig {
			code = "SERVERBUG"
		}
		c.write(tag + " NO [" + code + "] " + proxyFailureMsg + "\r\n")
		return
	}
	c.write("-ERR [SYS/TEMP] " + proxyFailureMsg + "\r\n")
}

// backend is the connection to the backend, counting what goes to it.
type backend struct {
	conn    net.Conn
	br      *bufio.Reader
	sent    atomic.Int64
	replied int64        // the length of the client's login answer
	lastIO  atomic.Int64 // unix seconds of the last read or write, either side
	started time.Time
}

func (b *backend) Write(p []byte) (int, error) {
	n, err := b.conn.Write(p)
	b.sent.Add(int64(n))
	b.touch()
	return n, err
}

func (b *backend) touch() { b.lastIO.Store(time.Now().Unix()) }

func (b *backend) send(s string) error {
	_, err := io.WriteString(b, s)
	return err
}

// dial connects to d, retrying as Dovecot does (login_proxy_max_reconnects,
// a second apart) while the proxy timeout allows.
func (c *client) proxyDial(d *proxyDest) (*backend, error) {
	start := time.Now()
	addr := netip.AddrPortFrom(d.ip, uint16(d.port)).String()
	max := int(c.s.Uint("login_proxy_max_reconnects"))
	for tries := 0; ; tries++ {
		left := d.timeout - time.Since(start)
		conn, err := net.DialTimeout("tcp", addr, left)
		if err == nil {
			b := &backend{conn: conn, br: bufio.NewReaderSize(conn, 4096), started: start}
			b.touch()
			if d.ssl && !d.starttls {
				if err := b.startTLS(d); err != nil {
					conn.Close()
					return nil, err
				}
			}
			return b, nil
		}
		if tries >= max || time.Since(start)+proxyRetry >= d.timeout {
			what := fmt.Sprintf("connect(%s, %d) failed: %s (after %d secs", d.ip, d.port, sysText(err), int(time.Since(start).Seconds()))
			if tries > 0 {
				what += fmt.Sprintf(", %d reconnects", tries)
			}
			return nil, errors.New(what + ")")
		}
		time.Sleep(proxyRetry)
	}
}

// startTLS makes b a TLS client of the backend, verifying its
// certificate against host unless any-cert was asked for.
func (b *backend) startTLS(d *proxyDest) error {
	t := tls.Client(b.conn, &tls.Config{ServerName: d.host, InsecureSkipVerify: d.anyCert})
	t.SetDeadline(time.Now().Add(d.timeout))
	if err := t.Handshake(); err != nil {
		return fmt.Errorf("Failed to start SSL: %v", err)
	}
	b.conn = t
	b.br = bufio.NewReaderSize(t, 4096)
	return nil
}

// proxyLogin connects to the backend and logs in there; on success the
// client has had the backend's answer to its login.
func (c *client) proxyLogin(d *proxyDest, tag string) (*backend, proxyFailure) {
	b, err := c.proxyDial(d)
	if err != nil {
		c.proxyLog(d, "Error", "%s", err)
		return nil, proxyConnect
	}
	b.conn.SetDeadline(time.Now().Add(d.timeout))
	var reply string
	var failure proxyFailure
	if c.proto == "imap" {
		reply, failure, err = c.imapProxyLogin(d, b, tag)
	} else {
		reply, failure, err = c.pop3ProxyLogin(d, b)
	}
	if err != nil {
		b.conn.Close()
		if failure != proxyAuth && failure != proxyTempFail {
			c.proxyLog(d, "Error", "%s", err)
		} else if c.s.Bool("auth_verbose") {
			c.proxyLog(d, "Info", "Login failed: %s", err)
		}
		return nil, failure
	}
	b.conn.SetDeadline(time.Time{})
	c.conn.SetDeadline(time.Time{})
	if c.write(reply) != nil {
		b.conn.Close()
		return nil, proxyConnect
	}
	b.replied = int64(len(reply))
	ms := time.Since(b.started).Milliseconds()
	c.proxyLog(d, "Info", "Started proxying to <%s> (%d.%03d secs)", d.ip, ms/1000, ms%1000)
	return b, 0
}

// readBackend reads one line from the backend; the error says how the
// backend went away, in the state the dialogue was in.
func (c *client) readBackend(b *backend, state string) (string, error) {
	line, err := readLine(b.br)
	b.touch()
	if err != nil {
		why := "EOF"
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			why = sysText(err)
		}
		return "", fmt.Errorf("Disconnected by server: %s (state=%s, duration=%ds)", why, state, int(time.Since(c.start).Seconds()))
	}
	return line, nil
}

// imapString quotes s as an IMAP string: quoted when it can be, else
// as a literal.
func imapString(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return "{" + strconv.Itoa(len(s)) + "}\r\n" + s
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// capsOf returns the capability list of a "[CAPABILITY ...]" response
// code at the start of text.
func capsOf(text string) (string, bool) {
	rest, ok := strings.CutPrefix(text, "[CAPABILITY ")
	if !ok {
		return "", false
	}
	caps, _, _ := strings.Cut(rest, "]")
	return caps, true
}

func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

// imapProxyLogin is imap-login's side of the backend dialogue: the
// banner, ID with the client's addresses, CAPABILITY when the banner had
// none, STARTTLS if asked for, LOGIN; it returns the client's answer.
func (c *client) imapProxyLogin(d *proxyDest, b *backend, tag string) (string, proxyFailure, error) {
	banner, err := c.readBackend(b, "banner")
	if err != nil {
		return "", proxyConnect, err
	}
	rest, ok := strings.CutPrefix(banner, "* OK ")
	if !ok {
		return "", proxyConnect, fmt.Errorf("Remote server sent invalid input: Invalid banner: %.160s", banner)
	}
	caps, known := capsOf(rest)
	var out strings.Builder
	if known && hasWord(caps, "ID") {
		fmt.Fprintf(&out, "I ID (\"x-session-id\" \"%s\" \"x-originating-ip\" \"%s\" \"x-originating-port\" \"%d\" \"x-connected-ip\" \"%s\" \"x-connected-port\" \"%d\" \"x-proxy-ttl\" \"%d\")\r\n",
			c.session, c.remote.Addr(), c.remote.Port(), c.local.Addr(), c.local.Port(), proxyTTL)
	}
	if !known {
		out.WriteString("C CAPABILITY\r\n")
	}
	login := func() (string, error) {
		if hasWord(caps, "LOGINDISABLED") && !d.ssl {
			return "", errors.New("Aborting due to remote server: LOGINDISABLED advertised, but SSL/TLS not enabled")
		}
		return "L LOGIN " + imapString(d.user) + " " + imapString(d.pass) + "\r\n", nil
	}
	if d.starttls {
		out.WriteString("S STARTTLS\r\n")
	} else {
		l, err := login()
		if err != nil {
			return "", proxyConfig, err
		}
		out.WriteString(l)
	}
	if b.send(out.String()) != nil {
		return "", proxyConnect, fmt.Errorf("Disconnected by server: write failed (state=banner)")
	}
	for {
		line, err := c.readBackend(b, "login")
		if err != nil {
			return "", proxyConnect, err
		}
		switch {
		case strings.HasPrefix(line, "S "):
			if !strings.HasPrefix(line, "S OK ") {
				return "", proxyConnect, fmt.Errorf("Aborting due to remote server: STARTTLS failed: %.160s", line[2:])
			}
			if err := b.startTLS(d); err != nil {
				return "", proxyConnect, err
			}
			l, err := login()
			if err != nil {
				return "", proxyConfig, err
			}
			if b.send(l) != nil {
				return "", proxyConnect, errors.New("Disconnected by server: write failed (state=login)")
			}
		case strings.HasPrefix(line, "L OK "):
			return c.imapLoginReply(tag, caps, line[len("L OK "):]), 0, nil
		case strings.HasPrefix(line, "L "):
			return c.imapLoginRefused(tag, line[2:])
		case len(line) > 13 && strings.EqualFold(line[:13], "* CAPABILITY "):
			caps = line[13:]
		}
	}
}

// imapLoginReply is the client's tagged OK: the backend's, with the
// backend's capabilities in it as a response code.
func (c *client) imapLoginReply(tag, caps, text string) string {
	if _, tagged := capsOf(text); tagged || caps == "" {
		return tag + " OK " + text + "\r\n"
	}
	if strings.HasPrefix(text, "[") {
		// Another response code gives way to the capabilities.
		if i := strings.Index(text, "]"); i >= 0 {
			text = strings.TrimPrefix(text[i+1:], " ")
		}
	}
	return tag + " OK [CAPABILITY " + caps + "] " + text + "\r\n"
}

// imapLoginRefused answers the client when the backend refused LOGIN:
// its generic failure becomes ours, so that a backend that says more
// tells nothing about which users exist; other response codes pass.
func (c *client) imapLoginRefused(tag, text string) (string, proxyFailure, error) {
	logged := strings.TrimPrefix(text, "NO ")
	switch {
	case strings.HasPrefix(text, "NO [UNAVAILABLE]"):
		c.write(tag + " NO " + logged + "\r\n")
		return "", proxyTempFail, errors.New(logged)
	case strings.HasPrefix(text, "NO [") && !strings.HasPrefix(text, "NO [AUTHENTICATIONFAILED]"):
		c.write(tag + " " + text + "\r\n")
	default:
		c.write(tag + " NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
	}
	return "", proxyAuth, errors.New(logged)
}

// pop3ProxyLogin is pop3-login's side: the banner, STLS if asked for,
// USER and PASS; it returns the client's answer, the backend's +OK.
func (c *client) pop3ProxyLogin(d *proxyDest, b *backend) (string, proxyFailure, error) {
	banner, err := c.readBackend(b, "banner")
	if err != nil {
		return "", proxyConnect, err
	}
	if !strings.HasPrefix(banner, "+OK") {
		return "", proxyConnect, fmt.Errorf("Remote server sent invalid input: Invalid banner: %.160s", banner)
	}
	steps := []struct{ state, cmd string }{{"user", "USER " + d.user}, {"pass", "PASS " + d.pass}}
	if d.starttls {
		steps = append([]struct{ state, cmd string }{{"starttls", "STLS"}}, steps...)
	}
	var line string
	for _, s := range steps {
		if b.send(s.cmd+"\r\n") != nil {
			return "", proxyConnect, fmt.Errorf("Disconnected by server: write failed (state=%s)", s.state)
		}
		if line, err = c.readBackend(b, s.state); err != nil {
			return "", proxyConnect, err
		}
		if !strings.HasPrefix(line, "+OK") {
			break
		}
		if s.state == "starttls" {
			if err := b.startTLS(d); err != nil {
				return "", proxyConnect, err
			}
		}
	}
	switch {
	case strings.HasPrefix(line, "+OK"):
		return line + "\r\n", 0, nil
	case strings.HasPrefix(line, "-ERR [SYS/TEMP]"):
		c.write(line + "\r\n")
		return "", proxyTempFail, errors.New(line[5:])
	case strings.HasPrefix(line, "-ERR "):
		c.write(line + "\r\n")
		return "", proxyAuth, errors.New(line[5:])
	}
	c.write("-ERR [AUTH] Authentication failed.\r\n")
	return "", proxyAuth, errors.New(line)
}

// clientSide counts what goes to the client during the relay.
type clientSide struct {
	w    io.Writer
	sent atomic.Int64
	b    *backend
}

func (s *clientSide) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.sent.Add(int64(n))
	s.b.touch()
	return n, err
}

// touchReader marks the backend's last I/O on every read.
type touchReader struct {
	r io.Reader
	b *backend
}

func (t touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.b.touch()
	return n, err
}

// proxyRelay copies bytes both ways, starting with what either side's
// reader has buffered, until one side closes; then it logs how the
// session ended, as Dovecot's proxy does.
func (c *client) proxyRelay(d *proxyDest, b *backend) {
	defer b.conn.Close()
	var w io.Writer = c.conn
	if c.tls != nil {
		w = c.tls
	}
	cs := &clientSide{w: w, b: b}
	cs.sent.Store(b.replied)
	type end struct {
		server bool
		err    error
	}
	ends := make(chan end, 2)
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			b.conn.Close()
			c.conn.Close()
		})
	}
	go func() {
		_, err := copyRelay(b, touchReader{c.br, b})
		ends <- end{false, err}
		closeBoth()
	}()
	go func() {
		_, err := copyRelay(cs, touchReader{b.br, b})
		ends <- end{true, err}
		closeBoth()
	}()
	first := <-ends
	<-ends
	side, why := "client", ""
	if first.server {
		side = "server"
	}
	if first.err != nil {
		why = ": " + sysText(first.err)
	}
	idle := time.Now().Unix() - b.lastIO.Load()
	c.proxyLog(d, "Info", "Disconnected by %s%s (%ds idle, in=%d, out=%d)", side, why, idle, b.sent.Load(), cs.sent.Load())
}

// copyRelay copies src to dst with a relay-sized buffer; it reports a
// read error other than EOF.
func copyRelay(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, relayBuf)
	n, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	return n, err
}
