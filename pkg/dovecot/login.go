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

// loginIdle is how long a client may stay silent before logging in
// (Dovecot's login processes: 3 minutes... with auth; 60 s idle here).
const loginIdle = 3 * time.Minute

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

	attempts        int
	user, method    string
	triedPlaintext  bool // a plaintext login refused on an insecure connection
	loggedOut, done bool
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
	c.s = st.cfg.For(doveconf.Match{Protocol: proto, Local: c.local.Addr().String(), Remote: c.remote.Addr().String()})
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
// or a client on loopback or on the server's own address.
func (c *client) secured() bool {
	r := c.remote.Addr()
	return c.tls != nil || r.IsLoopback() || r == c.local.Addr()
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
	return auth.Request{Service: c.proto, RemoteIP: c.remote.Addr().String(), LocalIP: c.local.Addr().String(), Secured: c.tls != nil}
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
	if c.attempts > 0 {
		what = fmt.Sprintf("auth failed, %d attempts in %d secs", c.attempts, secs)
	} else if c.triedPlaintext {
		what = "tried to use disallowed plaintext auth"
	}
	if c.loggedOut {
		c.logf("Aborted login (%s): %s", what, c.fields(0))
	} else {
		c.logf("Disconnected (%s): %s", what, c.fields(0))
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
	saslBadBase64
	saslUnsupported
	saslTempFail
	saslDisabled
)

func (c *client) sasl(mech string, ir *string, challenge func(string) error) (auth.Result, saslOutcome) {
	var res auth.Result
	mech = strings.ToUpper(mech)
	c.method = mech
	if (mech == "PLAIN" || mech == "LOGIN") && !c.plaintextAllowed() {
		c.triedPlaintext = true
		return res, saslDisabled
	}
	srv, err := c.a.SASL(context.Background(), mech, c.request(), &res)
	if err != nil {
		return res, saslUnsupported
	}
	var resp []byte
	if ir != nil {
		if *ir != "=" {
			b, err := base64.StdEncoding.DecodeString(*ir)
			if err != nil {
				return res, saslBadBase64
			}
			resp = b
		} else {
			resp = []byte{}
		}
	}
	for {
		ch, done, err := srv.Next(resp)
		if err != nil {
			c.attempts++
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
		return err
	}
	c.logf("Login: %s", c.fields(pid))
	c.done = true
	return nil
}

type authResult = auth.Result

// errInternal is what a client is told when its session cannot start.
var errInternal = errors.New("Internal error occurred. Refer to server log for more information.")
