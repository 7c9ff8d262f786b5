package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
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
	cfg      *postconf.Config
	log      *maillog.Logger
	cleanup  *cleanup.Cleanup
	resolver *addr.Resolver
	rewriter *addr.Rewriter
	tables   *maps.Cache

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

	tls         *tls.Config // STARTTLS; nil when smtpd_tls_security_level is none
	tlsRequired bool        // smtpd_tls_security_level = encrypt

	// Lookup is the reverse name lookup (net.DefaultResolver when nil);
	// tests may replace it.
	Lookup func(ctx context.Context, ip string) string
}

// New returns the smtpd service for cfg, logging to log (program
// "smtpd") and queueing through cleanup into q.
func New(cfg *postconf.Config, q *queue.Queue, log *maillog.Logger) *Server {
	s := &Server{
		cfg:        cfg,
		log:        log,
		cleanup:    cleanup.New(cfg, q, log.With("cleanup")),
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
	}
	for _, k := range cfg.List("smtpd_discard_ehlo_keywords") {
		s.discard[strings.ToUpper(k)] = true
	}
	if lvl := cfg.Get("smtpd_tls_security_level"); lvl == "may" || lvl == "encrypt" {
		cert, err := tls.LoadX509KeyPair(cfg.Get("smtpd_tls_cert_file"), keyFile(cfg))
		if err != nil {
			log.Warning("cannot load TLS certificate and key: %v: TLS disabled", err)
		} else {
			s.tls = &tls.Config{Certificates: []tls.Certificate{cert}}
		}
		s.tlsRequired = lvl == "encrypt"
	}
	if s.timeout <= 0 {
		s.timeout = 300 * time.Second
	}
	return s
}

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

func (s *Server) inMynetworks(ip net.IP) bool {
	for _, n := range s.mynetworks {
		if n.Contains(ip) {
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

// clientName is the client's verified host name, or "unknown".
func (s *Server) clientName(ctx context.Context, ip string) string {
	if s.Lookup != nil {
		return s.Lookup(ctx, ip)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, ip)
	if err != nil || len(names) == 0 {
		return "unknown"
	}
	name := strings.TrimSuffix(names[0], ".")
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		return "unknown"
	}
	for _, a := range addrs {
		if net.ParseIP(a).Equal(net.ParseIP(ip)) {
			return name
		}
	}
	return "unknown"
}
