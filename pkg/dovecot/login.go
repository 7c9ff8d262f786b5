package dovecot

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"postdove/pkg/auth"
	"postdove/pkg/doveconf"
	"postdove/pkg/handoff"
)

// loginIdle is how long a client may stay silent before logging in: 3
// minutes, as Dovecot's login processes (a variable for the tests).
var loginIdle = 3 * time.Minute

// client is one connection in its pre-login state.
type client struct {
	m       *master
	st      *state
	proto   string // imap or pop3
	conn    net.Conn
	tls     *tls.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	s       *doveconf.Settings
	a       auth.Authenticator
	local   netip.AddrPort
	remote  netip.AddrPort
	session string
	start   time.Time

	attempts        int // logins and SASL exchanges begun
	user, method    string
	failed          string // why the last attempt failed, when the log says more than "auth failed"
	unfinished      bool   // the last SASL exchange ended by bad base64 in a response
	successes       int    // logins whose mail process could not start
	loggedOut, done bool
	bad             int    // invalid commands so far
	reason          string // why the dialogue ended, for the log
	relay           func() // after handoff: relays the TLS session

}

func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func newClient(m *master, st *state, proto string, conn net.Conn, implicitTLS bool) *client {
	c := &client{m: m, st: st, proto: proto, conn: conn, local: addrPort(conn.LocalAddr()),
		remote: addrPort(conn.RemoteAddr()), session: sessionID(), start: time.Now()}
	c.s = st.settingsFor(doveconf.Match{Protocol: proto, Local: c.local.Addr().String(), Remote: c.remote.Addr().String()})
	c.a = *st.auth[proto]
	c.a.DisablePlaintext = c.s.Bool("disable_plaintext_auth") || c.s.Get("ssl") == "required"
	c.a.FailureDelay = c.s.Duration("auth_failure_delay")
	c.setConn(conn)
	if implicitTLS {
		c.startTLS()
	}
	return c
}

// setConn makes reads and writes go through conn, with small buffers:
// an idle connection costs little.
func (c *client) setConn(conn net.Conn) {
	c.br = bufio.NewReaderSize(conn, 1024)
	c.bw = bufio.NewWriterSize(conn, 1024)
}

func (c *client) startTLS() {
	c.tls = tls.Server(c.conn, c.st.tls)
	c.setConn(c.tls)
}

// secured reports whether Dovecot counts the connection as secure: TLS,
// a client on the server's own address (only that: from 127.0.0.2 to
// 127.0.0.1 is not secured), or one in login_trusted_networks.
func (c *client) secured() bool {
	return c.tls != nil || c.remote.Addr() == c.local.Addr() || c.trusted()
}

// trusted reports whether the client is in login_trusted_networks.
func (c *client) trusted() bool {
	for _, n := range strings.FieldsFunc(c.s.Get("login_trusted_networks"), sep) {
		if p, err := netip.ParsePrefix(n); err == nil && p.Contains(c.remote.Addr()) {
			return true
		}
		if a, err := netip.ParseAddr(n); err == nil && a.Unmap() == c.remote.Addr() {
			return true
		}
	}
	return false
}

// sslRequired reports whether ssl = required refuses every
// authentication on this connection until it has TLS.
func (c *client) sslRequired() bool {
	return c.s.Get("ssl") == "required" && !c.secured()
}

func (c *client) transport() string {
	if c.tls != nil {
		return "TLS"
	}
	if c.secured() {
		return "secured"
	}
	return ""
}

func (c *client) request() auth.Request {
	return auth.Request{Service: c.proto, RemoteIP: c.remote.Addr().String(), LocalIP: c.local.Addr().String(), Secured: c.secured()}
}

func (c *client) plaintextAllowed() bool {
	r := c.request()
	return c.a.PlaintextAllowed(&r)
}

func (c *client) sslEnabled() bool { return c.st.tls != nil }

func (c *client) logf(format string, args ...any) {
	c.m.log.logf(c.proto+"-login: ", "Info", format, args...)
}

func (c *client) fields(mpid int) string {
	return loginFields(c.user, c.method, c.remote.Addr().String(), c.local.Addr().String(), mpid, c.transport(), c.session)
}

// disconnected logs the end of a connection that did not log in.
func (c *client) disconnected() {
	secs := int(time.Since(c.start).Seconds())
	what := fmt.Sprintf("no auth attempts in %d secs", secs)
	switch {
	case c.attempts == 1 && c.unfinished:
		what = fmt.Sprintf("client didn't finish SASL auth, waited %d secs", secs)
	case c.attempts > 0 && c.failed != "":
		what = c.failed
	case c.successes > 0:
		what = fmt.Sprintf("internal failure, %d successful auths", c.successes)
	case c.attempts > 0:
		what = fmt.Sprintf("auth failed, %d attempts in %d secs", c.attempts, secs)
	}
	reason := c.reason
	switch {
	case c.loggedOut:
		reason = "Aborted login by logging out"
	case reason == "":
		reason = "Connection closed"
	}
	c.logf("Disconnected: %s (%s): %s", reason, what, c.fields(0))
}

// readEnded notes why reading the client's next command failed: a
// client silent for loginIdle is told so (bye is the reply's start,
// "* BYE " or "-ERR ") and logged as Dovecot's login processes log it.
func (c *client) readEnded(err error, bye string) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.reason = "Inactivity"
		c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.write(bye + "Disconnected for inactivity.\r\n")
	}
}

func (c *client) write(s string) error {
	c.bw.WriteString(s)
	return c.bw.Flush()
}

// saslExchange runs a SASL mechanism: challenges go out through
// challenge (base64 is added here), responses come back by lines. An
// initial response "=" is an empty one. It returns the authenticated
// result, or the reply to give: "" for a client's cancel.
type saslOutcome int

const (
	saslOK saslOutcome = iota
	saslFailed
	saslCancelled
	saslBadBase64  // in a response to a challenge
	saslBadInitial // in the initial response
	saslUnsupported
	saslTempFail
	saslDisabled    // a plaintext mechanism without TLS
	saslSSLRequired // ssl = required without TLS
)

func (c *client) sasl(mech string, ir *string, challenge func(string) error) (auth.Result, saslOutcome) {
	var res auth.Result
	mech = strings.ToUpper(mech)
	c.method = mech
	c.attempts++
	c.unfinished = false
	if c.sslRequired() {
		return res, saslSSLRequired
	}
	srv, err := c.a.SASL(context.Background(), mech, c.request(), &res)
	if err != nil {
		c.failed = "tried to use unsupported auth mechanism"
		return res, saslUnsupported
	}
	if (mech == "PLAIN" || mech == "LOGIN") && !c.plaintextAllowed() {
		c.failed = "tried to use disallowed plaintext auth"
		return res, saslDisabled
	}
	var resp []byte
	if ir != nil {
		if *ir != "=" {
			b, err := base64.StdEncoding.DecodeString(*ir)
			if err != nil {
				c.failed = "sent invalid base64 in response"
				return res, saslBadInitial
			}
			resp = b
		} else {
			resp = []byte{}
		}
	}
	for {
		ch, done, err := srv.Next(resp)
		if err != nil {
			c.failed = ""
			if u := saslUser(mech, resp, srv); u != "" {
				c.user = u
			}
			if errors.Is(err, sasl.ErrUnexpectedClientResponse) {
				return res, saslFailed
			}
			if auth.KindOf(err) == auth.Temporary {
				return res, saslTempFail
			}
			return res, saslFailed
		}
		if done {
			c.user = res.User
			return res, saslOK
		}
		if err := challenge(base64.StdEncoding.EncodeToString(ch)); err != nil {
			return res, saslCancelled
		}
		line, err := readLine(c.br)
		if err != nil || line == "*" {
			return res, saslCancelled
		}
		b, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			c.unfinished = true
			return res, saslBadBase64
		}
		resp = b
	}
}

// saslUser is the user name a failed exchange tried, for the log.
func saslUser(mech string, last []byte, srv sasl.Server) string {
	if mech == "PLAIN" {
		parts := strings.SplitN(string(last), "\x00", 3)
		if len(parts) == 3 {
			return parts[1]
		}
		return ""
	}
	if u, ok := srv.(interface{ Username() string }); ok {
		return u.Username()
	}
	return ""
}

// plaintextRefused counts a plaintext login (IMAP LOGIN, POP3 USER or
// PASS) refused on an insecure connection as an attempt, as Dovecot
// does, and keeps the first user name tried for the log.
func (c *client) plaintextRefused(user string) {
	c.attempts++
	if c.user == "" {
		c.user = user
	}
}

// login authenticates user and password (IMAP LOGIN, POP3 USER/PASS)
// with the PLAIN mechanism.
func (c *client) login(user, pass string) (auth.Result, saslOutcome) {
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	res, out := c.sasl("PLAIN", &ir, func(string) error { return errors.New("no challenge expected") })
	if out != saslOK && c.user == "" {
		c.user = user
	}
	return res, out
}

// handoff passes the logged-in client to the user's mail process;
// tag is the IMAP tag to answer. It returns an error for the client when
// that fails. A proxy user goes to the backend instead (proxy.go).
func (c *client) handoff(res auth.Result, tag string) error {
	if c.proxied(res, tag) {
		return nil
	}
	info := &handoff.Info{Protocol: c.proto, Session: c.session, RemoteIP: c.remote.Addr().String(),
		LocalIP: c.local.Addr().String(), RemotePort: int(c.remote.Port()), LocalPort: int(c.local.Port()),
		Secured: c.secured(), TLS: c.tls != nil, Tag: tag, Settings: c.s.Map(), Namespaces: c.s.Namespaces()}
	if n := c.br.Buffered(); n > 0 {
		info.Input, _ = c.br.Peek(n)
	}
	pid, err := c.m.procs.handoff(c, res, info)
	if err != nil {
		c.successes++
		return err
	}
	c.logf("Login: %s", c.fields(pid))
	c.done = true
	return nil
}

type authResult = auth.Result

// plaintextDisallowed is the reply to a plaintext login on an insecure
// connection.
const plaintextDisallowed = "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."

// errInternal is what a client is told when its session cannot start.
var errInternal = errors.New("Internal error occurred. Refer to server log for more information.")
