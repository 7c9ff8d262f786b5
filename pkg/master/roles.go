package master

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"postdove/pkg/syserr"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"postdove/pkg/addr"
	"postdove/pkg/bounce"
	"postdove/pkg/cleanup"
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
	rs := addr.NewResolver(d.cfg)
	clean := d.cleanup()
	m := &qmgr.Manager{
		Q:   d.q,
		Log: d.log,
		Resolve: func(a string) (string, string) {
			class, hop, err := rs.ResolveErr(a)
			var te *addr.TableError
			if errors.As(err, &te) {
				for _, w := range te.Warnings() {
					d.log.Warning("%s", w)
				}
				return "retry", ""
			}
			if class == addr.ClassLocal {
				return "local", hop
			}
			return "smtp", hop
		},
		Transports: map[string]qmgr.Transport{
			"local": localClient(filepath.Join(d.q.Dir, queue.Private, "local")),
			// error(8) as retry: an address that cannot be resolved now
			// (a domain table is unavailable) waits in the queue.
			"retry": func(local.Request) ([]local.Result, error) { return nil, errors.New("address resolver failure") },
		},
		Notify:         notifier(d.cfg, clean, d.log.With("bounce"), bounce.Failure),
		Report:         notifier(d.cfg, clean, d.log.With("bounce"), bounce.Verify),
		QueueRunDelay:  d.cfg.Duration("queue_run_delay"),
		MinBackoff:     d.cfg.Duration("minimal_backoff_time"),
		MaxBackoff:     d.cfg.Duration("maximal_backoff_time"),
		MaxLifetime:    d.cfg.Duration("maximal_queue_lifetime"),
		BounceLifetime: d.cfg.Duration("bounce_queue_lifetime"),
	}
	return m.Run(d.ctx.Done())
}

// notifier writes non-delivery notifications or delivery status reports
// (bounce(8)) and queues them through cleanup: one to the sender, or to
// owner-NAME for failures of a mailing list that has an owner. Bounces of
// bounces go to 2bounce_notice_recipient; those of the double-bounce
// sender are dropped.
func notifier(cfg *postconf.Config, clean *cleanup.Cleanup, log *maillog.Logger, kind bounce.Kind) qmgr.Notifier {
	return func(m *queue.Message, content func() (io.ReadCloser, error), failed []local.Result) (string, error) {
		byTarget := map[string][]local.Result{}
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
					if r.Status == local.Sent {
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

// localRequest is what qmgr sends to the local delivery agent: the message
// stays in the active queue, where local (root) reads it.
type localRequest struct {
	QueueID    string
	Recipients []local.Recipient
	Delays     local.Delays
}

// dialService connects to a service socket. The master starts local and
// qmgr together, and Postfix's master owns the sockets before any service
// runs: while local is still coming up (no socket yet, or not yet
// listening, or its socket not yet given to mail_owner) the dial is retried until timeout instead of deferring mail.
func dialService(sock string, timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("unix", sock, timeout)
		if err == nil || time.Now().After(deadline) ||
			!(errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) ||
				errors.Is(err, syscall.EACCES)) {
			return conn, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// localClient is qmgr's side of private/local.
func localClient(sock string) qmgr.Transport {
	return func(req local.Request) ([]local.Result, error) {
		conn, err := dialService(sock, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("connect to transport private/local: %v", syserr.Text(err))
		}
		defer conn.Close()
		if err := json.NewEncoder(conn).Encode(localRequest{QueueID: req.QueueID, Recipients: req.Recipients, Delays: req.Delays}); err != nil {
			return nil, fmt.Errorf("write to transport private/local: %v", syserr.Text(err))
		}
		var res []local.Result
		if err := json.NewDecoder(conn).Decode(&res); err != nil {
			return nil, fmt.Errorf("read from transport private/local: %v", syserr.Text(err))
		}
		return res, nil
	}
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

	ln, err := inheritedListener(roleSockets["local"][0])
	if err != nil {
		return err
	}
	ln = drainListener(ln)
	// Stopping, or the master gone: deliveries under way finish and are
	// reported to qmgr first, so that none is made twice.
	var busy sync.WaitGroup
	defer busy.Wait()
	go func() {
		<-d.ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if d.ctx.Err() != nil {
				return nil
			}
			return err
		}
		busy.Add(1)
		go func() {
			defer busy.Done()
			serveLocal(d, agent, conn)
		}()
	}
}

func serveLocal(d *daemon, agent *local.Agent, conn net.Conn) {
	defer conn.Close()
	var req localRequest
	if err := json.NewDecoder(conn).Decode(&req); err != nil {
		d.log.Warning("private/local: bad request: %v", err)
		return
	}
	if !queue.ValidID(req.QueueID) {
		d.log.Warning("private/local: bad queue ID %q", req.QueueID)
		return
	}
	f, err := d.q.Open(queue.Active, req.QueueID)
	var res []local.Result
	if err != nil {
		for _, r := range req.Recipients {
			res = append(res, local.Result{Recipient: r, Final: r.Address, Status: local.Deferred, DSN: "4.3.0", Relay: "local",
				Text: fmt.Sprintf("cannot open queue file: %v", err)})
		}
	} else {
		path, off, size := f.Path, f.Offset, f.Size
		f.Close()
		res = agent.Deliver(local.Request{
			QueueID: f.ID, Sender: f.Sender, Arrival: f.Arrival, Size: f.Size,
			Recipients: req.Recipients, Delays: req.Delays, Verify: f.Verify(),
			Open: func() (io.ReadCloser, error) { return qmgr.OpenContent(path, off, size) },
		})
		res = markDuplicates(req.Recipients, res)
	}
	json.NewEncoder(conn).Encode(res)
}

// markDuplicates gives each recipient the agent made no delivery for (a
// duplicate of one it made in this message) a result: the queue manager
// defers a recipient without one. Like Postfix's local, it is done
// without a log line.
func markDuplicates(rcpts []local.Recipient, res []local.Result) []local.Result {
	have := map[int]bool{}
	for _, r := range res {
		have[r.Index] = true
	}
	for _, r := range rcpts {
		if !have[r.Index] {
			res = append(res, local.Result{Recipient: r, Final: r.Address, Status: local.Sent, DSN: "2.0.0", Relay: "local", Duplicate: true})
		}
	}
	return res
}
