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
// and its next hop. An empty transport is a failure to resolve it now:
// the recipient is deferred with the next hop as the reason.
type Resolver func(addr string) (transport, nexthop string)

// Manager is the queue manager of one queue_directory.
type Manager struct {
	Q       *queue.Queue
	Log     *maillog.Logger
	Resolve Resolver
	// ResolveFrom, when set, is used instead of Resolve: the route may
	// depend on the sender (sender_dependent_relayhost_maps).
	ResolveFrom func(addr, sender string) (transport, nexthop string)
	Transports  map[string]Transport
	Notify      Notifier
	// Report sends the delivery status report of a message sendmail -bv
	// submitted (queue.TraceVerify): failed then holds every recipient's
	// result, Sent for the deliverable ones.
	Report Notifier

	QueueRunDelay  time.Duration // queue_run_delay
	MinBackoff     time.Duration // minimal_backoff_time
	MaxBackoff     time.Duration // maximal_backoff_time
	MaxLifetime    time.Duration // maximal_queue_lifetime
	BounceLifetime time.Duration // bounce_queue_lifetime
	// TransportRetry is transport_retry_time: how long a transport whose
	// agent could not be reached is left alone (default 60s).
	TransportRetry time.Duration
	// Concurrency is how many messages are in the active queue at once
	// (qmgr_message_active_limit); default 1000.
	Concurrency int
	// InitialConcurrency is initial_destination_concurrency (default 5).
	InitialConcurrency int
	// Limits gives a transport's destination concurrency limit
	// (<transport>_destination_concurrency_limit) and recipient limit
	// (<transport>_destination_recipient_limit); default 20 and 50.
	Limits func(transport string) (concurrency, recipients int)
	// StopGrace is how long Run waits, when stopped, for deliveries under
	// way to report (default 5s); what has not reported by then stays in
	// the active queue and is delivered again at the next start.
	StopGrace time.Duration

	Now func() time.Time

	// The scheduler's state, owned by the goroutine running Run or Drain.
	once   sync.Once
	in     dirScan // the scan of the incoming queue under way
	msgs   map[string]*activeMsg
	dests  map[destKey]*dest
	dead   map[string]deadTransport
	done   chan outcome
	ctx    context.Context
	cancel context.CancelFunc
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Manager) init() {
	m.once.Do(func() {
		m.msgs = map[string]*activeMsg{}
		m.dests = map[destKey]*dest{}
		m.dead = map[string]deadTransport{}
		m.done = make(chan outcome)
		m.ctx, m.cancel = context.WithCancel(context.Background())
	})
}

// Run is the queue manager's main loop: it recovers messages left in the
// active queue by a crash, then moves incoming mail into the active queue and
// delivers it whenever triggered (public/qmgr) and at least every
// queue_run_delay, retrying deferred mail whose time has come. It never
// waits for a delivery: agents report on a channel. It returns when stop
// is closed, after the deliveries under way have reported (for at most
// StopGrace).
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
	m.in.again = true
	m.feed()
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
			m.shutdown()
			return nil
		case o := <-m.done:
			m.finished(o)
		case req, ok := <-triggers:
			if !ok {
				m.shutdown()
				return errors.New("qmgr trigger closed")
			}
			// Every request written since is answered by the same
			// scans: a burst of mail is one scan, not one per message.
			reqs := map[byte]bool{req: true}
			for more := true; more; {
				select {
				case req, ok := <-triggers:
					reqs[req] = true
					more = ok
				default:
					more = false
				}
			}
			if reqs[queue.QmgrFlushDead] {
				m.flushDead()
			}
			m.in.again = true
			if reqs[queue.QmgrScanAll] || reqs[queue.QmgrFlushDead] {
				m.feed()
				m.scan(queue.Deferred, true)
			} else if reqs[queue.QmgrScanDeferred] {
				m.scan(queue.Deferred, false)
			}
		case <-poll.C:
			m.in.again = true
		case <-deferredTick.C:
			m.scan(queue.Deferred, false)
		}
		// Room in the active queue, or new mail: take more incoming.
		m.feed()
	}
}

// dirScan is a scan of the incoming queue as Postfix's queue manager
// makes it: the directory is read once, and its messages are taken into
// the active queue as it has room; a request to scan (a trigger, the
// poll) while one is under way makes another when it is done, instead of
// reading the whole directory again for each new message.
type dirScan struct {
	ids   []string // read, not yet taken
	again bool     // read the directory again when ids is done
}

// feed takes messages of the incoming scan into the active queue while it
// has room, starting the next scan when one was asked for.
func (m *Manager) feed() {
	limit := m.activeLimit()
	for len(m.msgs) < limit {
		if len(m.in.ids) == 0 {
			if !m.in.again {
				return
			}
			m.in.again = false
			ids, err := m.Q.List(queue.Incoming)
			if err != nil {
				m.Log.Warning("scan %s: %v", queue.Incoming, err)
				return
			}
			if len(ids) == 0 {
				return
			}
			m.in.ids = ids
		}
		id := m.in.ids[0]
		m.in.ids = m.in.ids[1:]
		if m.msgs[id] == nil {
			m.process(queue.Incoming, id)
		}
	}
}

// activeLimit is qmgr_message_active_limit (Concurrency), default 1000.
func (m *Manager) activeLimit() int {
	if m.Concurrency <= 0 {
		return 1000
	}
	return m.Concurrency
}

// shutdown waits for the deliveries under way for at most StopGrace,
// keeping their results, then cancels the others.
func (m *Manager) shutdown() {
	grace := m.StopGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	for m.busy() > 0 {
		select {
		case o := <-m.done:
			m.finished(o)
		case <-t.C:
			m.cancel()
			// The cancelled deliveries report at once; their messages
			// stay in the active queue.
			for n := m.busy(); n > 0; n-- {
				<-m.done
			}
			return
		}
	}
}

// Drain delivers everything in the incoming and active queues and waits for
// it (used by tests and `postfix flush` style one-shot runs).
func (m *Manager) Drain() {
	m.init()
	m.scan(queue.Active, false)
	m.scan(queue.Incoming, false)
	m.settle()
}

// settle takes reports until no message is in the active queue.
func (m *Manager) settle() {
	for len(m.msgs) > 0 {
		m.finished(<-m.done)
	}
}

// scan brings the messages in queue name into the active queue, up to
// Concurrency messages. For the deferred queue only messages whose retry
// time (the file's mtime) has come are taken, unless force is set.
func (m *Manager) scan(name string, force bool) {
	ids, err := m.Q.List(name)
	if err != nil {
		m.Log.Warning("scan %s: %v", name, err)
		return
	}
	limit := m.activeLimit()
	now := m.now()
	for _, id := range ids {
		if len(m.msgs) >= limit {
			return // the rest at the next scan
		}
		if m.msgs[id] != nil {
			continue
		}
		if name == queue.Deferred && !force {
			st, err := os.Stat(m.Q.Path(name, id))
			if err != nil || st.ModTime().After(now) {
				continue
			}
		}
		m.process(name, id)
	}
}

// process moves message id from queue from into the active queue and
// hands its recipients to their destinations' queues.
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
	// Nothing in a queue file may stop the queue manager: a file it
	// cannot handle is set aside like one it cannot read.
	var jobs []*job
	func() {
		defer func() {
			if p := recover(); p != nil {
				f.Close()
				jobs = nil
				m.corrupt(id, fmt.Sprint("cannot process: ", p))
			}
		}()
		jobs = m.start(f, from)
	}()
	if jobs == nil {
		return
	}
	if len(jobs) == 0 {
		m.finish(m.msgs[id])
		return
	}
	for _, j := range jobs {
		j.dest.todo = append(j.dest.todo, j)
	}
	for _, j := range jobs {
		m.dispatch(j.dest)
	}
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
	return m.deferralDSN(id, msg, r, "4.3.0", why, d)
}

// deferralDSN is deferral with status code dsn.
func (m *Manager) deferralDSN(id string, msg *queue.Message, r delivery.Recipient, dsn, why string, d delivery.Delays) delivery.Result {
	res := delivery.Result{Recipient: r, Final: r.Address, Status: delivery.Deferred, DSN: dsn, Text: why, Relay: "none"}
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
