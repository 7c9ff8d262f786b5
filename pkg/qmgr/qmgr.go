package qmgr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"postdove/pkg/delivery"
	"postdove/pkg/maillog"
	"postdove/pkg/queue"
)

// Transport delivers some recipients of one message (all of one transport)
// and returns one or more results per recipient (delivery.Result.Index is the
// recipient's index in the queue file). When ctx ends the queue manager no
// longer waits for it.
type Transport func(ctx context.Context, req delivery.Request) ([]delivery.Result, error)

// Notifier sends a delivery status notification for a message: failed holds
// the bounced results ("failed") or the expired recipients. It returns the
// queue ID of the notification ("" when none was sent, e.g. a bounce of a
// bounce with nobody to tell).
type Notifier func(m *queue.Message, content func() (io.ReadCloser, error), failed []delivery.Result) (string, error)

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
	// Report sends the delivery status report of a message sendmail -bv
	// submitted (queue.TraceVerify): failed then holds every recipient's
	// result, Sent for the deliverable ones.
	Report Notifier

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
			m.corrupt(id, ce.Reason)
			return
		}
		if !errors.Is(err, os.ErrNotExist) {
			m.Log.Warning("%s: open: %v", id, err)
		}
		return
	}
	defer f.Close()
	// Nothing in a queue file may stop the queue manager: a file it
	// cannot handle is set aside like one it cannot read.
	defer func() {
		if p := recover(); p != nil {
			m.corrupt(id, fmt.Sprint("cannot process: ", p))
		}
	}()
	m.deliver(f, from)
}

// corrupt moves message id from the active queue to the corrupt queue,
// with Postfix's warning.
func (m *Manager) corrupt(id, reason string) {
	m.Log.Warning("%s: corrupt queue file: %s", id, reason)
	m.Log.Warning("saving corrupt file \"%s\" from queue \"%s\" to queue \"%s\"", id, queue.Active, queue.Corrupt)
	if err := m.Q.Move(id, queue.Active, queue.Corrupt); err != nil {
		m.Log.Warning("%s: save corrupt file queue %s: %v", id, queue.Active, err)
	}
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
	// A message from incoming has no logfiles of earlier attempts; else
	// the reasons of the last attempt make way for this one's.
	fresh := from == queue.Incoming
	if !fresh {
		if err := m.Q.RemoveLog(queue.Defer, id); err != nil {
			m.Log.Warning("%s: %v", id, err)
		}
	}
	logged := map[string]bool{} // logfiles this attempt wrote to
	path := f.Path
	open := func() (io.ReadCloser, error) { return OpenContent(path, msg.Offset, msg.Size) }

	// Group the recipients still to do by transport and next hop.
	type route struct{ transport, nexthop string }
	groups := map[route][]delivery.Recipient{}
	var order []route
	for i, r := range msg.Recipients {
		if r.Status.Done() {
			continue
		}
		tr, hop := m.Resolve(r.Address)
		rt := route{tr, hop}
		if _, seen := groups[rt]; !seen {
			order = append(order, rt)
		}
		groups[rt] = append(groups[rt], delivery.Recipients(msg, i)...)
	}

	verify := msg.Verify()
	deferred := map[int][]delivery.Result{}
	for _, rt := range order {
		tr, rcpts := rt.transport, groups[rt]
		req := delivery.Request{
			QueueID: id, Sender: msg.Sender, Arrival: msg.Arrival,
			Recipients: rcpts, Size: msg.Size, Open: open,
			Delays:    delivery.Delays{BeforeQmgr: start.Sub(msg.Arrival), InQmgr: m.now().Sub(start)},
			Verify:    verify,
			Transport: tr, Nexthop: rt.nexthop,
		}
		results, err := m.transport(tr, req)
		if err != nil {
			// The transport could not be reached: everything is deferred.
			results = nil
			for _, r := range rcpts {
				results = append(results, m.deferral(id, msg, r, err.Error(), req.Delays))
			}
		} else {
			results = m.complete(tr, id, msg, rcpts, results, req.Delays)
		}
		for _, r := range rcpts {
			var mine []delivery.Result
			for _, res := range results {
				if res.Index == r.Index {
					mine = append(mine, res)
				}
			}
			if verify {
				m.trace(f, tr, r.Index, mine, logged)
				continue
			}
			switch m.record(f, r.Index, mine, logged) {
			case queue.TempFail:
				for _, res := range mine {
					if res.Status == delivery.Deferred {
						deferred[r.Index] = append(deferred[r.Index], res)
					}
				}
			}
		}
	}

	// Expired: deferred recipients of a message older than the queue
	// lifetime are returned to the sender.
	if len(deferred) > 0 && m.expired(msg) {
		for idx, rs := range deferred {
			for i := range rs {
				rs[i].Status = delivery.Bounced
				rs[i].DSN = permanent(rs[i].DSN)
			}
			m.record(f, idx, rs, logged)
		}
		m.Log.Info("%s: from=<%s>, status=expired, returned to sender", id, msg.Sender)
	}

	keep := false
	for _, r := range msg.Recipients {
		if !r.Status.Done() {
			keep = true
		}
	}
	for _, log := range []string{queue.Bounce, queue.Trace} {
		if (!fresh || logged[log]) && !m.notify(msg, open, log) {
			keep = true
		}
	}
	if keep {
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

// complete checks a transport's results against the recipients it was
// given: results about other recipients or with an unknown status are
// dropped, and a recipient it returned nothing else for was not delivered: as Postfix's queue manager does
// when a delivery agent fails to reply, it is deferred with "unknown mail
// transport error".
func (m *Manager) complete(tr, id string, msg *queue.Message, rcpts []delivery.Recipient, results []delivery.Result, d delivery.Delays) []delivery.Result {
	asked := map[int]bool{}
	for _, r := range rcpts {
		asked[r.Index] = true
	}
	answered := map[int]bool{}
	var out []delivery.Result
	for _, res := range results {
		if !asked[res.Index] {
			m.Log.Warning("%s: transport %s: result for a recipient it was not given: %s", id, tr, res.Final)
			continue
		}
		if res.Status != delivery.Sent && res.Status != delivery.Deferred && res.Status != delivery.Bounced {
			m.Log.Warning("%s: transport %s: unknown status %d for recipient %s", id, tr, res.Status, res.Final)
			continue
		}
		answered[res.Index] = true
		out = append(out, res)
	}
	for _, r := range rcpts {
		if !answered[r.Index] {
			m.Log.Warning("%s: transport %s: no result for recipient %s", id, tr, r.Address)
			out = append(out, m.deferral(id, msg, r, "unknown mail transport error", d))
		}
	}
	return out
}

// deferral is the queue manager's own deferral of recipient r, logged.
func (m *Manager) deferral(id string, msg *queue.Message, r delivery.Recipient, why string, d delivery.Delays) delivery.Result {
	res := delivery.Result{Recipient: r, Final: r.Address, Status: delivery.Deferred, DSN: "4.3.0", Text: why, Relay: "none"}
	m.logDeferred(id, msg, res, d)
	return res
}

// record keeps the results of recipient idx: bounces in the bounce logfile
// (which the notification is made from), deferrals in the defer logfile,
// and then the recipient's new status in the queue file, which it
// returns; logged notes the logfiles written to. A recipient is marked bounced only once its bounce is safely
// logged; otherwise it stays to do and is tried again.
func (m *Manager) record(f *queue.File, idx int, results []delivery.Result, logged map[string]bool) queue.Status {
	id := f.ID
	st := queue.Delivered
	switch overall(results) {
	case delivery.Deferred:
		st = queue.TempFail
	case delivery.Bounced:
		st = queue.Bounced
	}
	for _, res := range results {
		e := queue.LogEntry{Recipient: res.Final, Orig: res.Orig, Status: res.DSN, Reason: res.Text, NotifySender: res.NotifySender}
		switch res.Status {
		case delivery.Bounced:
			e.Action = "failed"
			logged[queue.Bounce] = true
			if err := m.Q.AppendLog(queue.Bounce, id, e); err != nil {
				m.Log.Warning("%s: %v", id, err)
				st = queue.TempFail
			}
		case delivery.Deferred:
			e.Action = "delayed"
			if err := m.Q.AppendLog(queue.Defer, id, e); err != nil {
				m.Log.Warning("%s: %v", id, err)
			}
		}
	}
	if err := f.SetStatus(idx, st); err != nil {
		m.Log.Warning("%s: update recipient status: %v", id, err)
	}
	return st
}

// overall is the status of one queue file recipient from its results:
// Deferred if any delivery for it was deferred (or there was none), else
// Bounced if every one bounced, else Sent.
func overall(results []delivery.Result) delivery.Status {
	if len(results) == 0 {
		return delivery.Deferred
	}
	bounced := 0
	for _, r := range results {
		switch r.Status {
		case delivery.Deferred:
			return delivery.Deferred
		case delivery.Bounced:
			bounced++
		}
	}
	if bounced == len(results) {
		return delivery.Bounced
	}
	return delivery.Sent
}

// permanent turns a deferral's status code into a failure's ("4.2.0" to
// "5.2.0"); anything else becomes 5.0.0.
func permanent(dsn string) string {
	if len(dsn) >= 5 && (dsn[0] == '4' || dsn[0] == '5') && dsn[1] == '.' {
		return "5" + dsn[1:]
	}
	return "5.0.0"
}

// notify sends the sender the notification for the recipients in the
// message's logfile log: the non-delivery notification (bounce) or the
// delivery status report (trace), and removes the logfile once the
// notification is queued. It reports false when the notification could
// not be sent: the message is then kept, with its logfile, and the
// notification is tried again with the message.
func (m *Manager) notify(msg *queue.Message, open func() (io.ReadCloser, error), log string) bool {
	id := msg.ID
	send, what := m.Notify, "non-delivery notification"
	if log == queue.Trace {
		send, what = m.Report, "delivery status notification"
	}
	entries, err := m.Q.ReadLog(log, id)
	if err != nil {
		m.Log.Warning("%s: %v", id, err)
		if !errors.Is(err, bufio.ErrTooLong) {
			return false // tried again with the message
		}
		// A damaged logfile: what could be read is reported.
	}
	if len(entries) == 0 || send == nil {
		return true
	}
	results := make([]delivery.Result, 0, len(entries))
	for _, e := range entries {
		st := delivery.Bounced
		if e.Action == "deliverable" {
			st = delivery.Sent
		}
		results = append(results, delivery.Result{
			Recipient: delivery.Recipient{Address: e.Recipient, Orig: e.Orig}, Final: e.Recipient,
			Status: st, DSN: e.Status, Text: e.Reason, NotifySender: e.NotifySender,
		})
	}
	who := "sender"
	if msg.Sender == "" {
		who = "postmaster"
	}
	nid, err := send(msg, open, results)
	if err != nil {
		m.Log.Warning("%s: %s %s failed: %v", id, who, what, err)
		return false
	}
	if nid != "" {
		m.Log.With("bounce").Info("%s: %s %s: %s", id, who, what, nid)
	}
	if err := m.Q.RemoveLog(log, id); err != nil {
		m.Log.Warning("%s: %v", id, err)
		return false
	}
	return true
}

// trace keeps the results of recipient idx of a message sendmail -bv
// submitted in the trace logfile (noted in logged), which the report is
// made from, and then marks the recipient done: a report is not retried as delivery would be.
func (m *Manager) trace(f *queue.File, tr string, idx int, results []delivery.Result, logged map[string]bool) {
	st := queue.Delivered
	for _, res := range results {
		if res.Duplicate {
			continue // reported with the recipient it duplicates
		}
		e := queue.LogEntry{Recipient: res.Final, Orig: res.Orig, Status: res.DSN, Action: "undeliverable", Reason: res.Text}
		if res.Status == delivery.Sent {
			e.Action = "deliverable"
		}
		if res.Relay != "none" {
			e.Reason = "delivery via " + tr + ": " + res.Text
		}
		logged[queue.Trace] = true
		if err := m.Q.AppendLog(queue.Trace, f.ID, e); err != nil {
			m.Log.Warning("%s: %v", f.ID, err)
			st = queue.TempFail
		}
	}
	if err := f.SetStatus(idx, st); err != nil {
		m.Log.Warning("%s: update recipient status: %v", f.ID, err)
	}
}

func (m *Manager) transport(name string, req delivery.Request) ([]delivery.Result, error) {
	t := m.Transports[name]
	if t == nil {
		return nil, fmt.Errorf("delivery temporarily suspended: mail transport %s is not available", name)
	}
	return t(context.Background(), req)
}

func (m *Manager) logDeferred(id string, msg *queue.Message, res delivery.Result, d delivery.Delays) {
	total := m.now().Sub(msg.Arrival)
	orig := ""
	if res.Orig != "" && res.Orig != res.Final {
		orig = fmt.Sprintf(", orig_to=<%s>", res.Orig)
	}
	status := "deferred"
	if msg.Verify() {
		status = "undeliverable"
	}
	m.Log.Info("%s: to=<%s>%s, relay=%s, delay=%s, delays=%s/%s/0/0, dsn=%s, status=%s (%s)",
		id, res.Final, orig, res.Relay, delivery.FormatDelay(total),
		delivery.FormatDelay(d.BeforeQmgr), delivery.FormatDelay(d.InQmgr), res.DSN, status, res.Text)
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
	return delivery.OpenContent(path, off, size)
}
