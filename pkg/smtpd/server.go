package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"postdove/pkg/addr"
	"postdove/pkg/cleanup"
	"postdove/pkg/maillog"
	"postdove/pkg/maps"
	"postdove/pkg/postconf"
	"postdove/pkg/queue"
)

// Server is one smtpd service: main.cf with the service's -o overrides
// already applied.
type Server struct {
	cfg   *postconf.Config
	log   *maillog.Logger
	queue Queue
	// standAlone is sendmail -bs: no restrictions, no TLS.
	standAlone bool
	resolver   *addr.Resolver
	rewriter   *addr.Rewriter
	tables     *maps.Cache

	hostname   string
	banner     string
	mynetworks []*net.IPNet
	sizeLimit  int64
	rcptLimit  int
	timeout    time.Duration
	softLimit  int
	hardLimit  int
	errorSleep time.Duration
	heloNeeded bool
	discard    map[string]bool
	// delayReject is smtpd_delay_reject: with no, the client, HELO and
	// sender restrictions are applied at connect, HELO/EHLO and MAIL.
	delayReject bool

	// bareLF is smtpd_forbid_bare_newline ("", "normalize" or
	// "reject"), for clients outside bareLFExempt.
	bareLF       string
	bareLFExempt []*net.IPNet
	// connLimit is smtpd_client_connection_count_limit, for clients
	// outside connExempt (smtpd_client_event_limit_exceptions); conns
	// counts each client's sessions, as Postfix's anvil(8) does per
	// service.
	connLimit  int
	connExempt []*net.IPNet
	connMu     sync.Mutex
	conns      map[string]int

	tls         *tls.Config // STARTTLS; nil when smtpd_tls_security_level is none
	tlsRequired bool        // smtpd_tls_security_level = encrypt
	wrapper     bool        // smtpd_tls_wrappermode: smtps, TLS from the first byte

	// Lookup is the reverse name lookup (net.DefaultResolver when nil);
	// tests may replace it.
	Lookup func(ctx context.Context, ip string) string
	// Resolver answers reject_unknown_*_domain's DNS queries
	// (net.DefaultResolver when nil).
	Resolver *net.Resolver
}

func (s *Server) dns() *net.Resolver {
	if s.Resolver != nil {
		return s.Resolver
	}
	return net.DefaultResolver
}

// New returns the smtpd service for cfg, logging to log (program
// "smtpd") and queueing through cleanup into q.
func New(cfg *postconf.Config, q *queue.Queue, log *maillog.Logger) *Server {
	s := &Server{
		cfg:        cfg,
		log:        log,
		queue:      cleanupQueue{cleanup.New(cfg, q, log.With("cleanup"))},
		resolver:   addr.NewResolver(cfg),
		rewriter:   addr.NewRewriter(cfg),
		tables:     maps.NewCache(maps.Options{FoldCase: true}, func(msg string) { log.Error("%s", msg) }),
		hostname:   cfg.Get("myhostname"),
		banner:     cfg.Get("smtpd_banner"),
		mynetworks: parseNetworks(cfg.List("mynetworks")),
		sizeLimit:  cfg.Size("message_size_limit"),
		rcptLimit:  cfg.Int("smtpd_recipient_limit"),
		timeout:    cfg.Duration("smtpd_timeout"),
		softLimit:  cfg.Int("smtpd_soft_error_limit"),
		hardLimit:  cfg.Int("smtpd_hard_error_limit"),
		errorSleep: cfg.Duration("smtpd_error_sleep_time"),
		heloNeeded: cfg.Bool("smtpd_helo_required"),
		discard:    map[string]bool{},

		delayReject: cfg.Bool("smtpd_delay_reject"),
	}
	switch strings.ToLower(cfg.Get("smtpd_forbid_bare_newline")) {
	case "yes", "normalize":
		s.bareLF = "normalize"
	case "reject":
		s.bareLF = "reject"
	}
	s.bareLFExempt = parseNetworks(cfg.List("smtpd_forbid_bare_newline_exclusions"))
	s.connLimit = cfg.Int("smtpd_client_connection_count_limit")
	s.connExempt = parseNetworks(cfg.List("smtpd_client_event_limit_exceptions"))
	s.conns = map[string]int{}
	for _, k := range cfg.List("smtpd_discard_ehlo_keywords") {
		s.discard[strings.ToUpper(k)] = true
	}
	s.wrapper = cfg.Bool("smtpd_tls_wrappermode")
	if lvl := cfg.Get("smtpd_tls_security_level"); lvl == "may" || lvl == "encrypt" || s.wrapper {
		cert, err := tls.LoadX509KeyPair(cfg.Get("smtpd_tls_cert_file"), keyFile(cfg))
		if err != nil {
			log.Warning("cannot load TLS certificate and key: %v: TLS disabled", err)
		} else {
			s.tls = tlsConfig(cert)
		}
		s.tlsRequired = lvl == "encrypt"
	}
	if s.timeout <= 0 {
		s.timeout = 300 * time.Second
	}
	return s
}

// Queue is where a session's messages go: through cleanup into the
// incoming queue for the smtpd service, into the maildrop queue for
// sendmail -bs.
type Queue interface {
	// Open starts a message's queue file; smtpd calls it at the first
	// accepted recipient, as Postfix's does, and logs its ID from there.
	Open() (Pending, error)
	// Queue finishes the message p was opened for (nil when Open gave
	// none) and returns its queue ID; it removes p on failure.
	Queue(p Pending, sub *cleanup.Submission, content io.Reader) (string, error)
}

// Pending is a queue file being written: its ID ("" when not known
// yet) and its removal when the transaction is given up.
type Pending interface {
	ID() string
	Abort()
}

type cleanupQueue struct{ c *cleanup.Cleanup }

func (q cleanupQueue) Open() (Pending, error) { return q.c.Open() }

func (q cleanupQueue) Queue(p Pending, sub *cleanup.Submission, content io.Reader) (string, error) {
	if f, ok := p.(*cleanup.File); ok {
		sub.File = f
	}
	return q.c.Process(sub, content)
}

// StandAlone is the session of sendmail -bs (Postfix's smtpd run
// stand-alone): one session on in and out with the same commands,
// replies and log lines, for a client shown as localhost[127.0.0.1],
// without the access restrictions and TLS, its mail queued by q.
func StandAlone(cfg *postconf.Config, q Queue, log *maillog.Logger) *Server {
	s := New(cfg, nil, log)
	s.queue, s.standAlone, s.tls = q, true, nil
	s.Lookup = func(context.Context, string) string { return "localhost" }
	return s
}

// ServeStdio runs one session on in and out (sendmail -bs).
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) {
	s.ServeConn(ctx, &stdioConn{in: in, out: out})
}

// stdioConn is standard input and output as the client's connection.
type stdioConn struct {
	in  io.Reader
	out io.Writer
}

func (c *stdioConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *stdioConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *stdioConn) Close() error                { return nil }
func (c *stdioConn) LocalAddr() net.Addr         { return localhost }
func (c *stdioConn) RemoteAddr() net.Addr        { return localhost }
func (c *stdioConn) SetDeadline(time.Time) error { return nil }
func (c *stdioConn) SetReadDeadline(time.Time) error {
	return nil
}
func (c *stdioConn) SetWriteDeadline(time.Time) error { return nil }

var localhost = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}

// keyFile is smtpd_tls_key_file, which defaults to the certificate file.
func keyFile(cfg *postconf.Config) string {
	if k := cfg.Get("smtpd_tls_key_file"); k != "" {
		return k
	}
	return cfg.Get("smtpd_tls_cert_file")
}

// parseNetworks reads mynetworks' CIDR and bare-address entries
// ("[::1]/128" included); other entries (tables) are skipped.
func parseNetworks(list []string) []*net.IPNet {
	var out []*net.IPNet
	for _, e := range list {
		e = strings.Replace(strings.Replace(e, "[", "", 1), "]", "", 1)
		if !strings.Contains(e, "/") {
			if ip := net.ParseIP(e); ip != nil {
				bits := 32
				if ip.To4() == nil {
					bits = 128
				}
				out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			}
			continue
		}
		if _, n, err := net.ParseCIDR(e); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (s *Server) inMynetworks(ip net.IP) bool { return inNetworks(s.mynetworks, ip) }

func inNetworks(nets []*net.IPNet, ip net.IP) bool {
	for _, n := range nets {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// Serve accepts connections on ln and runs one session for each until
// ctx is done; it then closes ln and waits for the sessions.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var err error
	for {
		c, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil && !errors.Is(aerr, net.ErrClosed) {
				err = aerr
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ServeConn(ctx, c)
		}()
	}
	wg.Wait()
	return err
}

// admit counts a new session from ip and reports whether it is within
// smtpd_client_connection_count_limit; done must be called when the
// session ends. n is the client's session count with this one.
func (s *Server) admit(ip string) (n int, ok bool, done func()) {
	s.connMu.Lock()
	s.conns[ip]++
	n = s.conns[ip]
	s.connMu.Unlock()
	done = func() {
		s.connMu.Lock()
		if s.conns[ip]--; s.conns[ip] <= 0 {
			delete(s.conns, ip)
		}
		s.connMu.Unlock()
	}
	ok = s.connLimit <= 0 || n <= s.connLimit || inNetworks(s.connExempt, net.ParseIP(ip))
	return n, ok, done
}

// serviceName is the master.cf service smtpd runs as, for log lines.
func (s *Server) serviceName() string {
	if n := s.cfg.Get("service_name"); n != "" {
		return n
	}
	return "smtp"
}

// clientName is the client's verified host name, or "unknown". As
// Postfix, a name from the PTR record that does not resolve back to ip
// is logged as a warning and not used.
func (s *Server) clientName(ctx context.Context, ip string) string {
	if s.Lookup != nil {
		return s.Lookup(ctx, ip)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names, err := s.dns().LookupAddr(ctx, ip)
	if err != nil || len(names) == 0 {
		return "unknown"
	}
	name := strings.TrimSuffix(names[0], ".")
	addrs, nx, err := forwardLookup(ctx, s.dns(), name)
	if err != nil {
		s.log.Warning("hostname %s does not resolve to address %s: %s", name, ip, forwardError(err, nx))
		return "unknown"
	}
	for _, a := range addrs {
		if net.ParseIP(a).Equal(net.ParseIP(ip)) {
			return name
		}
	}
	s.log.Warning("hostname %s does not resolve to address %s", name, ip)
	return "unknown"
}
