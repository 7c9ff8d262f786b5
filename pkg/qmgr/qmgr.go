package qmgr

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"postdove/pkg/local"
	"postdove/pkg/maillog"
	"postdove/pkg/queue"
)

// Transport delivers some recipients of one message (all of one transport)
// and returns one or more results per recipient (local.Result.Index is the
// recipient's index in the queue file).
type Transport func(req local.Request) ([]local.Result, error)

// Notifier sends a delivery status notification for a message: failed holds
// the bounced results ("failed") or the expired recipients. It returns the
// queue ID of the notification ("" when none was sent, e.g. a bounce of a
// bounce with nobody to tell).
type Notifier func(m *queue.Message, content func() (io.ReadCloser, error), failed []local.Result) (string, error)

// Resolver says which transport an address goes to ("local", "smtp", ...)
// and its next hop.
type Resolver func(addr string) (transport, nexthop string)

// Manager is the queue manager of one queue_directory.
type Manager struct {
	Q          *queue.Queue
	Log        *maillog.Logger
	Resolve    Resolver
	Transports map[string]Transport
	Notify     Notifier

	QueueRunDelay  time.Duration // queue_run_delay
	MinBackoff     time.Duration // minimal_backoff_time
	MaxBackoff     time.Duration // maximal_backoff_time
	MaxLifetime    time.Duration // maximal_queue_lifetime
	BounceLifetime time.Duration // bounce_queue_lifetime
	// Concurrency is how many messages are delivered at once.
	Concurrency int

	Now func() time.Time

	mu       sync.Mutex
	inflight map[string]bool
	sem      chan struct{}
	wg       sync.WaitGroup
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) init() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight == nil {
		m.inflight = map[string]bool{}
		n := m.Concurrency
		if n <= 0 {
			n = 8
		}
		m.sem = make(chan struct{}, n)
	}
}

// Run is the queue manager's main loop: it recovers messages left in the
// active queue by a crash, then moves incoming mail into the active queue and
// delivers it whenever triggered (public/qmgr) and at least every
// queue_run_delay, retrying deferred mail whose time has come. It returns
// when stop is closed, after the deliveries under way have finished.
func (m *Manager) Run(stop <-chan struct{}) error {
	m.init()
	triggers, closer, err := queue.Listen(m.Q.Dir, "qmgr")
	if err != nil {
		return err
	}
	defer closer.Close()
	// Messages in active/ were being delivered when the system went down:
	// deliver them again (recipients already marked done are skipped).
	m.scan(queue.Active, false)
	m.scan(queue.Incoming, false)
	m.scan(queue.Deferred, false)
	delay := m.QueueRunDelay
	if delay <= 0 {
		delay = 300 * time.Second
	}
	// Incoming mail is also picked up by a short poll, so a lost trigger
	// delays mail by a second, not by queue_run_delay.
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	deferredTick := time.NewTicker(delay)
	defer deferredTick.Stop()
	for {
		select {
		case <-stop:
			m.wg.Wait()
			return nil
		case req, ok := <-triggers:
			if !ok {
				m.wg.Wait()
				return errors.New("qmgr trigger closed")
			}
			switch req {
			case queue.QmgrScanAll, queue.QmgrFlushDead:
				m.scan(queue.Incoming, false)
				m.scan(queue.Deferred, true)
			case queue.QmgrScanDeferred:
				m.scan(queue.Deferred, false)
			default:
				m.scan(queue.Incoming, false)
			}
		case <-poll.C:
			m.scan(queue.Incoming, false)
		case <-deferredTick.C:
			m.scan(queue.Deferred, false)
		}
	}
}

// Drain delivers everything in the incoming and active queues and waits for
// it (used by tests and `postfix flush` style one-shot runs).
func (m *Manager) Drain() {
	m.init()
	m.scan(queue.Active, false)
	m.scan(queue.Incoming, false)
	m.wg.Wait()
}

// scan starts delivery of the messages in queue name. For the deferred
// queue only messages whose retry time (the file's mtime) has come are
// taken, unless force is set.
func (m *Manager) scan(name string, force bool) {
	ids, err := m.Q.List(name)
	if err != nil {
		m.Log.Warning("scan %s: %v", name, err)
		return
	}
	now := m.now()
	for _, id := range ids {
		if name == queue.Deferred && !force {
			st, err := os.Stat(m.Q.Path(name, id))
			if err != nil || st.ModTime().After(now) {
				continue
			}
		}
		m.mu.Lock()
		busy := m.inflight[id]
		if !busy {
			m.inflight[id] = true
		}
		m.mu.Unlock()
		if busy {
			continue
		}
		m.sem <- struct{}{}
		m.wg.Add(1)
		go func(from, id string) {
			defer func() {
				<-m.sem
				m.mu.Lock()
				delete(m.inflight, id)
				m.mu.Unlock()
				m.wg.Done()
			}()
			m.process(from, id)
		}(name, id)
	}
}

// process moves message id from queue from into the active queue and
// delivers it.
func (m *Manager) process(from, id string) {
	if from != queue.Active {
		if err := m.Q.Move(id, from, queue.Active); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				m.Log.Warning("%s: move to active: %v", id, err)
			}
			return
		}
	}
	f, err := m.Q.Open(queue.Active, id)
	if err != nil {
		var ce *queue.CorruptError
		if errors.As(err, &ce) {
			m.Log.Warning("%s: saving corrupt queue file: %s", id, ce.Reason)
			if err := m.Q.Move(id, queue.Active, queue.Corrupt); err != nil {
				m.Log.Warning("%s: move to corrupt: %v", id, err)
			}
			return
		}
		if !errors.Is(err, os.ErrNotExist) {
			m.Log.Warning("%s: open: %v", id, err)
		}
		return
	}
	defer f.Close()
	m.deliver(f, from)
}

func (m *Manager) deliver(f *queue.File, from string) {
	msg := &f.Message
	id := msg.ID
	start := m.now()
	pending := 0
	for _, r := range msg.Recipients {
		if !r.Status.Done() {
			pending++
		}
	}
	if from == queue.Incoming {
		m.Log.Info("%s: from=<%s>, size=%d, nrcpt=%d (queue active)", id, msg.Sender, msg.MessageSize, len(msg.Recipients))
	} else if from == queue.Deferred {
		m.Log.Info("%s: from=<%s>, size=%d, nrcpt=%d (queue active)", id, msg.Sender, msg.MessageSize, pending)
	}
	path := f.Path
	open := func() (io.ReadCloser, error) { return OpenContent(path, msg.Offset, msg.Size) }

	// Group the recipients still to do by transport.
	groups := map[string][]local.Recipient{}
	var order []string
	for i, r := range msg.Recipients {
		if r.Status.Done() {
			continue
		}
		tr, _ := m.Resolve(r.Address)
		if _, seen := groups[tr]; !seen {
			order = append(order, tr)
		}
		groups[tr] = append(groups[tr], local.Recipient{Address: r.Address, Orig: r.Orig, Index: i})
	}

	var bounced []local.Result
	deferred := map[int]local.Result{}
	for _, tr := range order {
		rcpts := groups[tr]
		req := local.Request{
			QueueID: id, Sender: msg.Sender, Arrival: msg.Arrival,
			Recipients: rcpts, Size: msg.Size, Open: open,
			Delays: local.Delays{BeforeQmgr: start.Sub(msg.Arrival), InQmgr: m.now().Sub(start)},
		}
		results, err := m.transport(tr, req)
		if err != nil {
			// The transport could not be reached: everything is deferred.
			results = nil
			for _, r := range rcpts {
				res := local.Result{Recipient: r, Final: r.Address, Status: local.Deferred, DSN: "4.3.0", Text: err.Error(), Relay: "none"}
				results = append(results, res)
				m.logDeferred(id, msg, res, req.Delays)
			}
		}
		for _, r := range rcpts {
			st := local.Overall(results, r.Index)
			qs := queue.Delivered
			switch st {
			case local.Deferred:
				qs = queue.TempFail
			case local.Bounced:
				qs = queue.Bounced
			}
			if err := f.SetStatus(r.Index, qs); err != nil {
				m.Log.Warning("%s: update recipient status: %v", id, err)
			}
		}
		for _, res := range results {
			switch res.Status {
			case local.Bounced:
				bounced = append(bounced, res)
				_ = m.Q.AppendLog(queue.Bounce, id, queue.LogEntry{Recipient: res.Final, Status: res.DSN, Action: "failed", Reason: res.Text})
			case local.Deferred:
				deferred[res.Index] = res
				_ = m.Q.AppendLog(queue.Defer, id, queue.LogEntry{Recipient: res.Final, Status: res.DSN, Action: "delayed", Reason: res.Text})
			}
		}
	}

	// Expired: deferred recipients of a message older than the queue
	// lifetime are returned to the sender.
	if len(deferred) > 0 && m.expired(msg) {
		for idx, res := range deferred {
			res.Status = local.Bounced
			res.DSN = "5" + res.DSN[1:]
			bounced = append(bounced, res)
			_ = f.SetStatus(idx, queue.Bounced)
		}
		deferred = nil
		m.Log.Info("%s: from=<%s>, status=expired, returned to sender", id, msg.Sender)
	}

	if len(bounced) > 0 && m.Notify != nil {
		nid, err := m.Notify(msg, open, bounced)
		if err != nil {
			// Keep the message so the notification is not lost.
			m.Log.Warning("%s: sender notification failed: %v", id, err)
			m.defer_(id, msg)
			return
		}
		if nid != "" {
			who := "sender"
			if msg.Sender == "" {
				who = "postmaster"
			}
			m.Log.With("bounce").Info("%s: %s non-delivery notification: %s", id, who, nid)
		}
	}
	if len(deferred) > 0 {
		// Recipients done now must stay done at the retry.
		if err := f.Sync(); err != nil {
			m.Log.Warning("%s: %v", id, err)
		}
		m.defer_(id, msg)
		return
	}
	if err := m.Q.Remove(queue.Active, id); err != nil {
		m.Log.Warning("%s: remove: %v", id, err)
		return
	}
	m.Log.Info("%s: removed", id)
}

func (m *Manager) transport(name string, req local.Request) ([]local.Result, error) {
	t := m.Transports[name]
	if t == nil {
		return nil, fmt.Errorf("delivery temporarily suspended: mail transport %s is not available", name)
	}
	return t(req)
}

func (m *Manager) logDeferred(id string, msg *queue.Message, res local.Result, d local.Delays) {
	total := m.now().Sub(msg.Arrival)
	orig := ""
	if res.Orig != "" && res.Orig != res.Final {
		orig = fmt.Sprintf(", orig_to=<%s>", res.Orig)
	}
	m.Log.Info("%s: to=<%s>%s, relay=%s, delay=%s, delays=%s/%s/0/0, dsn=%s, status=deferred (%s)",
		id, res.Final, orig, res.Relay, local.FormatDelay(total),
		local.FormatDelay(d.BeforeQmgr), local.FormatDelay(d.InQmgr), res.DSN, res.Text)
}

// expired reports whether msg has outlived its queue lifetime.
func (m *Manager) expired(msg *queue.Message) bool {
	life := m.MaxLifetime
	if msg.Sender == "" && m.BounceLifetime > 0 {
		life = m.BounceLifetime
	}
	if msg.ForcedExpire {
		return true
	}
	return life >= 0 && m.now().Sub(msg.Arrival) >= life
}

// defer_ moves a message to the deferred queue with its next attempt time
// as the file's mtime: the message's age, kept between minimal_backoff_time
// and maximal_backoff_time.
func (m *Manager) defer_(id string, msg *queue.Message) {
	if err := m.Q.Move(id, queue.Active, queue.Deferred); err != nil {
		m.Log.Warning("%s: move to deferred: %v", id, err)
		return
	}
	back := m.now().Sub(msg.Arrival)
	if back < m.MinBackoff {
		back = m.MinBackoff
	}
	if m.MaxBackoff > 0 && back > m.MaxBackoff {
		back = m.MaxBackoff
	}
	if err := m.Q.Touch(queue.Deferred, id, m.now().Add(back)); err != nil {
		m.Log.Warning("%s: set retry time: %v", id, err)
	}
}

// OpenContent opens the message content of a queue file.
func OpenContent(path string, off, size int64) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, size), f}, nil
}
