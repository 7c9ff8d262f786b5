package dovecot

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"postdove/pkg/auth"
	"postdove/pkg/doveconf"
	"postdove/pkg/lda"
)

// state is one loaded configuration: what a reload replaces.
type state struct {
	cfg    *doveconf.Config
	global *doveconf.Settings
	tls    *tls.Config // nil with ssl = no
	auth   map[string]*auth.Authenticator

	byRemote bool // some remote filter: each client's settings are its own
	mu       sync.Mutex
	settings map[doveconf.Match]*doveconf.Settings
}

// settingsFor returns the settings for a connection matching m. They are
// read only, and shared by the connections the same filters apply to: a
// copy for each would cost every idle connection a few dozen KiB. A
// configuration with remote filters gets a copy for each connection.
func (st *state) settingsFor(m doveconf.Match) *doveconf.Settings {
	if st.byRemote {
		return st.cfg.For(m)
	}
	m.Remote = ""
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.settings[m]
	if s == nil {
		s = st.cfg.For(m)
		st.settings[m] = s
	}
	return s
}

// loginServices are the login services and the protocol each serves.
var loginServices = map[string]string{"imap-login": "imap", "pop3-login": "pop3"}

// load reads and checks the configuration at path, as the master does at
// start and on reload. Its errors are in doveconf's wording.
func load(path string) (*state, error) {
	cfg, err := doveconf.Load(path)
	if err == nil {
		err = cfg.Conflict()
	}
	if err != nil {
		return nil, err
	}
	st := &state{cfg: cfg, global: cfg.Global(), auth: map[string]*auth.Authenticator{}, settings: map[doveconf.Match]*doveconf.Settings{}}
	for _, f := range cfg.Filters {
		st.byRemote = st.byRemote || f.Remote != ""
	}
	if errs := doveconf.Check(st.global); len(errs) > 0 {
		return nil, &doveconf.Error{File: path, Msg: errs[0]}
	}
	if st.global.Get("ssl") != "no" {
		if st.tls, err = tlsConfig(st.global); err != nil {
			return nil, err
		}
	}
	for _, p := range st.global.Protocols() {
		if _, ok := mailProtocol(p); !ok {
			continue
		}
		a, err := auth.New(cfg.For(doveconf.Match{Protocol: p}))
		if err != nil {
			return nil, &doveconf.Error{File: path, Msg: err.Error()}
		}
		st.auth[p] = a
	}
	return st, nil
}

func mailProtocol(p string) (string, bool) {
	for svc, proto := range loginServices {
		if proto == p {
			return svc, true
		}
	}
	return "", false
}

var tlsVersions = map[string]uint16{"TLSv1": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11, "TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}

func tlsConfig(s *doveconf.Settings) (*tls.Config, error) {
	cert, err := s.File("ssl_cert")
	if err != nil {
		return nil, err
	}
	key, err := s.File("ssl_key")
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
	if err != nil {
		return nil, fmt.Errorf("Couldn't parse SSL certificate or private key: %v", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if v, ok := tlsVersions[s.Get("ssl_min_protocol")]; ok {
		c.MinVersion = v
	}
	return c, nil
}

// spec is one listener the configuration asks for.
type spec struct {
	key     string // network and address: what a reload compares
	network string // tcp4, tcp6, unix
	addr    string
	service string
	proto   string // the login protocol, "" for a registered service
	ssl     bool
	l       doveconf.Listener
}

// specs lists the listeners of st: the login services' inet listeners for
// the protocols served, and the registered services' inet and unix
// listeners.
func specs(st *state) []spec {
	protos := map[string]bool{}
	for _, p := range st.global.Protocols() {
		protos[p] = true
	}
	var out []spec
	for _, svc := range st.global.Services() {
		proto, login := loginServices[svc.Name]
		_, registered := listeners[svc.Name]
		switch {
		case login && !protos[proto]:
			continue
		case !login && (!registered || isProtocol(svc.Name) && !protos[svc.Name]):
			continue
		}
		for _, l := range svc.Listeners {
			switch {
			case l.Kind == "inet_listener" && l.Port > 0:
				if l.SSL && st.tls == nil {
					continue
				}
				addrs := strings.FieldsFunc(l.Address, sep)
				if len(addrs) == 0 {
					addrs = st.global.List("listen")
				}
				for _, a := range addrs {
					network, host := "tcp4", a
					switch {
					case a == "*":
						host = "0.0.0.0"
					case a == "::" || a == "[::]":
						network, host = "tcp6", "::"
					case strings.Contains(a, ":"):
						network, host = "tcp6", strings.Trim(a, "[]")
					}
					addr := net.JoinHostPort(host, strconv.Itoa(l.Port))
					out = append(out, spec{key: network + " " + addr, network: network, addr: addr, service: svc.Name, proto: proto, ssl: l.SSL, l: l})
				}
			case l.Kind == "unix_listener" && !login && l.Name != "":
				path := l.Name
				if !filepath.IsAbs(path) {
					path = filepath.Join(st.global.Get("base_dir"), path)
				}
				out = append(out, spec{key: "unix " + path, network: "unix", addr: path, service: svc.Name, l: l})
			}
		}
	}
	return out
}

func sep(r rune) bool { return r == ',' || r == ' ' || r == '\t' }

func isProtocol(name string) bool {
	return name == "imap" || name == "pop3" || name == "lmtp" || name == "submission"
}

// errNoFamily is a "::" listener on a machine without IPv6: left out.
var errNoFamily = errors.New("address family not supported")

// bind opens one listener. A unix socket gets the listener's mode, user
// and group.
func bind(sp spec) (net.Listener, error) {
	if sp.network != "unix" {
		ln, err := net.Listen(sp.network, sp.addr)
		if err != nil && sp.network == "tcp6" && (errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)) {
			return nil, errNoFamily
		}
		return ln, err
	}
	os.MkdirAll(filepath.Dir(sp.addr), 0o755)
	if fi, err := os.Lstat(sp.addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(sp.addr)
	}
	old := syscall.Umask(0o777)
	ln, err := net.Listen("unix", sp.addr)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	mode, err := strconv.ParseUint(sp.l.Mode, 8, 32)
	if err != nil {
		mode = 0o600
	}
	uid, gid := -1, -1
	if u, err := user.Lookup(sp.l.User); err == nil && sp.l.User != "" {
		uid, _ = strconv.Atoi(u.Uid)
	}
	if g, err := user.LookupGroup(sp.l.Group); err == nil && sp.l.Group != "" {
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(sp.addr, uid, gid); err == nil {
		err = os.Chmod(sp.addr, os.FileMode(mode))
	}
	return ln, err
}

// bound is an open listener.
type bound struct {
	spec
	ln net.Listener
}

// master is the running dovecot master.
type master struct {
	path  string
	log   logSink
	st    atomic.Pointer[state]
	procs *mailProcs

	mu  sync.Mutex
	lns map[string]*bound
	wg  sync.WaitGroup
}

func newMaster(path string, st *state) (*master, error) {
	m := &master{path: path, lns: map[string]*bound{}}
	m.procs = &mailProcs{m: m, byUser: map[string]*mailProc{}}
	if err := m.setState(st); err != nil {
		return nil, err
	}
	return m, nil
}

// setState makes st the configuration in force: its log destinations.
func (m *master) setState(st *state) error {
	l, err := lda.NewLogger(st.global.Get)
	if err != nil {
		return err
	}
	m.log.set(l)
	for _, a := range st.auth {
		a.Logf = func(format string, args ...any) { m.log.logf("auth: ", "Error", format, args...) }
	}
	m.st.Store(st)
	return nil
}

// listen binds the listeners st asks for, keeping those already open
// with the same address, and closes the others. The errors are Dovecot's
// ("service(imap-login): listen(*, 143) failed: ...").
func (m *master) listen(st *state) error {
	want := specs(st)
	m.mu.Lock()
	defer m.mu.Unlock()
	keep := map[string]bool{}
	var errs []string
	var opened []*bound
	for _, sp := range want {
		if keep[sp.key] {
			continue
		}
		keep[sp.key] = true
		if b, ok := m.lns[sp.key]; ok && b.service == sp.service && b.ssl == sp.ssl {
			continue
		}
		ln, err := bind(sp)
		if err == errNoFamily {
			delete(keep, sp.key)
			continue
		}
		if err != nil {
			host, port, _ := net.SplitHostPort(sp.addr)
			if host == "0.0.0.0" {
				host = "*"
			}
			what := host + ", " + port
			if sp.network == "unix" {
				what = sp.addr
			}
			errs = append(errs, fmt.Sprintf("service(%s): listen(%s) failed: %s", sp.service, what, sysText(err)))
			continue
		}
		opened = append(opened, &bound{spec: sp, ln: ln})
	}
	if len(errs) > 0 {
		for _, b := range opened {
			b.ln.Close()
		}
		return errors.New(strings.Join(errs, "\n"))
	}
	for key, b := range m.lns {
		if !keep[key] {
			b.ln.Close()
			delete(m.lns, key)
		}
	}
	for _, b := range opened {
		if old := m.lns[b.key]; old != nil {
			old.ln.Close()
		}
		m.lns[b.key] = b
		m.wg.Add(1)
		go m.serve(b)
	}
	return nil
}

func sysText(err error) string {
	var se syscall.Errno
	if errors.As(err, &se) {
		s := se.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return err.Error()
}

// servicePrefix splits a service's log text into Dovecot's prefix and
// the rest: a text that begins with a prefix of its own ("lmtp(alice)<pid>
// <session>: ...") keeps it, any other gets def ("lmtp(pid): ").
func servicePrefix(service, def, text string) (string, string) {
	if strings.HasPrefix(text, service+"(") {
		if i := strings.Index(text, ": "); i > 0 {
			return text[:i+2], text[i+2:]
		}
	}
	return def, text
}

// serve accepts on b until it is closed.
func (m *master) serve(b *bound) {
	defer m.wg.Done()
	if b.proto == "" {
		prefix := fmt.Sprintf("%s(%d): ", b.service, os.Getpid())
		err := listeners[b.service](b.ln, m.st.Load().cfg, func(format string, args ...any) {
			m.log.line(servicePrefix(b.service, prefix, fmt.Sprintf(format, args...)))
		})
		if err != nil && !errors.Is(err, net.ErrClosed) {
			m.log.logf("master: ", "Error", "service(%s): %v", b.service, err)
		}
		return
	}
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go m.handle(conn, b)
	}
}

// handle runs one client's pre-login dialogue and, once it has logged
// in, relays its TLS session if it has one.
func (m *master) handle(conn net.Conn, b *bound) {
	defer conn.Close()
	c := newClient(m, m.st.Load(), b.proto, conn, b.ssl)
	if c.tls != nil {
		if err := c.tls.Handshake(); err != nil {
			return
		}
	}
	if b.proto == "imap" {
		c.serveIMAP()
	} else {
		c.servePOP3()
	}
	if !c.done {
		c.disconnected()
		return
	}
	if c.relay != nil {
		c.relay()
	}
}

// closeAll closes every listener and waits for the registered services'
// servers to return.
func (m *master) closeAll() {
	m.mu.Lock()
	for key, b := range m.lns {
		b.ln.Close()
		if b.network == "unix" {
			os.Remove(b.addr)
		}
		delete(m.lns, key)
	}
	m.mu.Unlock()
	m.wg.Wait()
}
