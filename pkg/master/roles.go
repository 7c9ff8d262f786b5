package master

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"postdove/pkg/addr"
	"postdove/pkg/bounce"
	"postdove/pkg/cleanup"
	"postdove/pkg/delivery"
	"postdove/pkg/discard"
	"postdove/pkg/erroragent"
	"postdove/pkg/local"
	"postdove/pkg/maillog"
	"postdove/pkg/pickup"
	"postdove/pkg/postconf"
	"postdove/pkg/qmgr"
	"postdove/pkg/queue"
)

// daemon is what every role starts with: main.cf, its logger, its queue,
// and a context cancelled by SIGTERM.
type daemon struct {
	cfg *postconf.Config
	svc postconf.Service
	log *maillog.Logger
	q   *queue.Queue
	ctx context.Context
}

func newDaemon(dir, program string) (*daemon, context.CancelFunc, error) {
	cfg, err := postconf.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	svc := service(cfg)
	if svc.Name != "" {
		// Postfix's daemons know their master.cf entry's name:
		// -o syslog_name=postfix/$service_name.
		cfg.Set("service_name", svc.Name)
	}
	for _, o := range svc.Options {
		cfg.Set(o[0], o[1])
	}
	log, err := maillog.New(maillog.FromConfig(cfg.Get, program))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := daemonContext()
	return &daemon{cfg: cfg, svc: svc, log: log, q: queue.FromConfig(cfg), ctx: ctx}, cancel, nil
}

// service is the master.cf entry this daemon was started for (envService);
// a zero Service when there is none.
func service(cfg *postconf.Config) postconf.Service {
	want := os.Getenv(envService)
	for _, s := range cfg.Services() {
		if s.Name+"/"+s.Type == want {
			return s
		}
	}
	return postconf.Service{}
}

// wakeup is the service's wakeup time (master.cf's sixth column), or def.
func (d *daemon) wakeup(def time.Duration) time.Duration {
	n, err := strconv.Atoi(strings.TrimSuffix(d.svc.Wakeup, "?"))
	if err != nil || n <= 0 {
		return def
	}
	return time.Duration(n) * time.Second
}

// processLimit is the service's process limit (master.cf's seventh
// column, default_process_limit for "-"); 0 is none.
func (d *daemon) processLimit() int {
	if n, err := strconv.Atoi(d.svc.Maxproc); err == nil {
		return n
	}
	return d.cfg.Int("default_process_limit")
}

func (d *daemon) cleanup() *cleanup.Cleanup {
	return cleanup.New(d.cfg, d.q, d.log.With("cleanup"))
}

// runPickup is pickup(8): maildrop -> cleanup -> incoming.
func runPickup(dir string) error {
	d, cancel, err := newDaemon(dir, "pickup")
	if err != nil {
		return err
	}
	defer cancel()
	p := &pickup.Pickup{Queue: d.q, Cleanup: d.cleanup(), Log: d.log}
	err = p.Run(d.ctx, d.wakeup(time.Minute))
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// runQmgr is qmgr(8), with bounce(8)'s notifications.
func runQmgr(dir string) error {
	d, cancel, err := newDaemon(dir, "qmgr")
	if err != nil {
		return err
	}
	defer cancel()
	rt := addr.NewRouter(d.cfg)
	clean := d.cleanup()
	m := &qmgr.Manager{
		Q:   d.q,
		Log: d.log,
		ResolveFrom: func(a, sender string) (string, string) {
			r, err := rt.RouteFrom(a, sender)
			var te *addr.TableError
			if errors.As(err, &te) {
				for _, w := range te.Warnings() {
					d.log.Warning("%s", w)
				}
				// Postfix's qmgr defers such mail itself.
				return "", "address resolver failure"
			}
			return r.Transport, r.Nexthop
		},
		Transports:         transports(d.cfg, d.q.Dir),
		InitialConcurrency: d.cfg.Int("initial_destination_concurrency"),
		Limits: func(tr string) (int, int) {
			return perTransport(d.cfg, tr, "destination_concurrency_limit"), perTransport(d.cfg, tr, "destination_recipient_limit")
		},
		Notify:         notifier(d.cfg, clean, d.log.With("bounce"), bounce.Failure),
		Report:         notifier(d.cfg, clean, d.log.With("bounce"), bounce.Verify),
		QueueRunDelay:  d.cfg.Duration("queue_run_delay"),
		MinBackoff:     d.cfg.Duration("minimal_backoff_time"),
		MaxBackoff:     d.cfg.Duration("maximal_backoff_time"),
		MaxLifetime:    d.cfg.Duration("maximal_queue_lifetime"),
		BounceLifetime: d.cfg.Duration("bounce_queue_lifetime"),
		TransportRetry: d.cfg.Duration("transport_retry_time"),
	}
	// defer_transports: their mail waits, without a delivery attempt.
	// (Postfix has its error(8) agent log it, dsn=4.3.2: left to the
	// error transport.)
	for _, name := range postconf.SplitList(d.cfg.Get("defer_transports")) {
		m.Transports[name] = func(context.Context, delivery.Request) ([]delivery.Result, error) {
			return nil, errors.New("deferred transport")
		}
	}
	return m.Run(d.ctx.Done())
}

// transports are the delivery agents the queue manager reaches: one per
// master.cf unix service, on its private/<name> socket, other than the
// daemons postdove runs that are not agents (pickup, qmgr, showq). The
// agents postdove runs may still be coming up: their sockets are waited
// for. Others (smtp until its client is there, or an agent the
// administrator runs) are tried once: when nobody listens the mail is
// deferred with "mail transport unavailable", as Postfix's qmgr does.
func transports(cfg *postconf.Config, dir string) map[string]qmgr.Transport {
	out := map[string]qmgr.Transport{}
	for _, s := range cfg.Services() {
		role, runs := daemons[s.Command]
		if s.Type != "unix" || runs && !agents[role] {
			continue
		}
		c := delivery.NewClient(dir, s.Name)
		if !runs {
			c.DialTimeout = time.Millisecond
		}
		out[s.Name] = c.Deliver
	}
	return out
}

// perTransport is transport_NAME (smtp_destination_concurrency_limit), or
// default_NAME when it is not set.
func perTransport(cfg *postconf.Config, tr, name string) int {
	if v := cfg.Int(tr + "_" + name); v > 0 {
		return v
	}
	return cfg.Int("default_" + name)
}

// notifier writes non-delivery notifications or delivery status reports
// (bounce(8)) and queues them through cleanup: one to the sender, or to
// owner-NAME for failures of a mailing list that has an owner. Bounces of
// bounces go to 2bounce_notice_recipient; those of the double-bounce
// sender are dropped.
func notifier(cfg *postconf.Config, clean *cleanup.Cleanup, log *maillog.Logger, kind bounce.Kind) qmgr.Notifier {
	return func(m *queue.Message, content func() (io.ReadCloser, error), failed []delivery.Result) (string, error) {
		byTarget := map[string][]delivery.Result{}
		var order []string
		for _, r := range failed {
			if kind == bounce.Verify {
				// A report goes to whoever asked for it.
				r.NotifySender = ""
			}
			if _, seen := byTarget[r.NotifySender]; !seen {
				order = append(order, r.NotifySender)
			}
			byTarget[r.NotifySender] = append(byTarget[r.NotifySender], r)
		}
		var ids []string
		for _, owner := range order {
			sender := m.Sender
			if owner != "" {
				sender = owner
			}
			from, to, ok := bounce.Envelope(sender, cfg.Get("double_bounce_sender"), cfg.Get("2bounce_notice_recipient"))
			if !ok {
				log.Info("%s: discarding undeliverable notification from <%s>", m.ID, m.Sender)
				continue
			}
			rep := bounce.Report{
				Kind: kind, Hostname: cfg.Get("myhostname"), QueueID: m.ID,
				Sender: m.Sender, To: to, Arrival: m.Arrival, SizeLimit: cfg.Size("bounce_size_limit"),
			}
			for _, r := range byTarget[owner] {
				rc := bounce.Recipient{Final: r.Final, Original: qualify(r.Orig, cfg.Get("myorigin")), Given: r.Orig, DSN: r.DSN, Text: r.Text}
				if kind == bounce.Verify {
					rc.Action = "undeliverable"
					if r.Status == delivery.Sent {
						rc.Action = "deliverable"
					}
				}
				rep.Recipients = append(rep.Recipients, rc)
			}
			id, err := notify(clean, rep, from, content)
			if err != nil {
				return strings.Join(ids, ", "), err
			}
			ids = append(ids, id)
		}
		return strings.Join(ids, ", "), nil
	}
}

// qualify appends @domain to an address without one, as the reports name
// original recipients ("alice" was given, "alice@example.com" is reported).
func qualify(a, domain string) string {
	if a == "" || strings.Contains(a, "@") {
		return a
	}
	return a + "@" + domain
}

func notify(clean *cleanup.Cleanup, rep bounce.Report, from string, content func() (io.ReadCloser, error)) (string, error) {
	orig, err := content()
	if err != nil {
		return "", err
	}
	defer orig.Close()
	var buf bytes.Buffer
	if err := bounce.Write(&buf, rep, orig); err != nil {
		return "", err
	}
	return clean.Process(&cleanup.Submission{Sender: from, Recipients: []string{rep.To}, UID: -1}, &buf)
}

// runLocal is local(8): it runs as root and serves qmgr's requests on
// private/local, one connection per message.
func runLocal(dir string) error {
	d, cancel, err := newDaemon(dir, "local")
	if err != nil {
		return err
	}
	defer cancel()
	settings, err := local.SettingsFrom(d.cfg.Get)
	if err != nil {
		d.log.Fatal("%v", err) // default_privs = root: local(8) refuses to run
	}
	owner, err := ownerCred(d.cfg)
	if err != nil {
		return err
	}
	uid, gid := int(owner.Uid), int(owner.Gid)
	// Mail local forwards elsewhere is queued as mail_owner's.
	fq := *d.q
	fq.Owner = &[2]int{uid, gid}
	clean := cleanup.New(d.cfg, &fq, d.log.With("cleanup"))
	rs := addr.NewResolver(d.cfg)
	agent := &local.Agent{
		Settings: settings,
		Logf:     d.log.Info,
		Warnf:    d.log.Warning,
		Errorf:   d.log.Error,
		IsLocal:  rs.IsLocalDomain,
		Resubmit: func(sender string, rcpts []string, content io.Reader) (string, error) {
			id, err := clean.Process(&cleanup.Submission{Sender: sender, Recipients: rcpts, UID: -1}, content)
			if err == nil {
				queue.Trigger(d.q.Dir, "qmgr", queue.QmgrScanIncoming)
			}
			return id, err
		},
	}
	defer agent.Close()
	agent.Pass = func(tr, hop string, req delivery.Request) ([]delivery.Result, error) {
		// A delivery under way finishes even when local is stopping.
		return delivery.NewClient(d.q.Dir, tr).Deliver(context.Background(), req)
	}

	return serveAgent(d, "local", agent.Handle)
}

// serveAgent serves the daemon's private/<service> socket with the
// delivery contract until it is stopped.
func serveAgent(d *daemon, relay string, h delivery.Handler) error {
	name := queue.Private + "/" + d.svc.Name
	raw, err := inheritedListener(name)
	if err != nil {
		return err
	}
	a := &activity{}
	idled := d.exitWhenIdle(a, raw)
	srv := &delivery.Server{Queue: d.q, Service: name, Relay: relay, Handler: h, Warnf: d.log.Warning, Limit: d.processLimit()}
	err = srv.Serve(drainContext(d.ctx, a), a.listener(raw))
	if idled() {
		return nil
	}
	return err
}

// exitWhenIdle ends the daemon's listeners lns after max_idle without a
// client (exitWhenIdle); a counts their clients.
func (d *daemon) exitWhenIdle(a *activity, lns ...net.Listener) (idled func() bool) {
	return exitWhenIdle(d.ctx, d.cfg.Duration("max_idle"), a, lns...)
}

// runError is error(8), and its retry service: it bounces (or defers)
// every recipient with the next hop's text.
func runError(dir string) error {
	d, cancel, err := newDaemon(dir, "error")
	if err != nil {
		return err
	}
	defer cancel()
	// As Postfix's, retry logs as postfix/error: the program's name.
	a := &erroragent.Agent{Retry: d.svc.Name == "retry", Logf: d.log.Info}
	return serveAgent(d, "none", a.Handle)
}

// runDiscard is discard(8): it reports every recipient delivered.
func runDiscard(dir string) error {
	d, cancel, err := newDaemon(dir, "discard")
	if err != nil {
		return err
	}
	defer cancel()
	a := &discard.Agent{Logf: d.log.Info}
	return serveAgent(d, "none", a.Handle)
}
