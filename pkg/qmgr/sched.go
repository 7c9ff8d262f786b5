package qmgr

import (
	"io"
	"slices"
	"strings"
	"time"

	"postdove/pkg/delivery"
	"postdove/pkg/queue"
)

// destKey names a destination: a transport and a next hop, and for a
// transport whose destination recipient limit is 1 the recipient too: as
// in Postfix, its destination concurrency limit is then per recipient
// (local(8): two deliveries at once to one mailbox, any number of
// mailboxes in parallel).
type destKey struct{ transport, nexthop, rcpt string }

// dest is the queue of one destination, as Postfix's qmgr keeps them: the
// deliveries waiting, how many run, the concurrency window with its
// feedback, and whether it is suspended ("dead").
type dest struct {
	key        destKey
	todo       []*job
	busy       int
	window     int // deliveries allowed at once now
	limit      int // <transport>_destination_concurrency_limit
	successes  int // since the window last grew
	failures   int // destination failures without a success between
	deadUntil  time.Time
	deadReason string
	deadDSN    string
}

// deadTransport is a transport whose agent could not be reached.
type deadTransport struct {
	until  time.Time
	reason string
}

// activeMsg is a message in the active queue with deliveries to make.
type activeMsg struct {
	f        *queue.File
	from     string
	start    time.Time
	pending  int // jobs not yet reported
	fresh    bool
	verify   bool
	logged   map[string]bool // logfiles this attempt wrote to
	deferred map[int][]delivery.Result
	open     func() (io.ReadCloser, error)
}

// job is one delivery request: recipients of one message at one
// destination, up to the transport's recipient limit.
type job struct {
	msg   *activeMsg
	dest  *dest
	rcpts []delivery.Recipient
}

// outcome is what a delivery reported.
type outcome struct {
	job     *job
	results []delivery.Result
	err     error
	delays  delivery.Delays
}

func (m *Manager) limits(tr string) (concurrency, recipients int) {
	concurrency, recipients = 20, 50
	if m.Limits != nil {
		c, r := m.Limits(tr)
		if c > 0 {
			concurrency = c
		}
		if r > 0 {
			recipients = r
		}
	}
	return concurrency, recipients
}

func (m *Manager) initial(limit int) int {
	w := m.InitialConcurrency
	if w <= 0 {
		w = 5
	}
	return min(w, limit)
}

func (m *Manager) dest(k destKey) *dest {
	d := m.dests[k]
	if d == nil {
		limit, _ := m.limits(k.transport)
		d = &dest{key: k, limit: limit, window: m.initial(limit)}
		m.dests[k] = d
	}
	return d
}

// start logs message f's arrival in the active queue and returns its
// deliveries: its recipients still to do, grouped by destination and cut
// at the transport's recipient limit.
func (m *Manager) start(f *queue.File, from string) []*job {
	msg := &f.Message
	id := msg.ID
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
	a := &activeMsg{f: f, from: from, start: m.now(), fresh: from == queue.Incoming, verify: msg.Verify(),
		logged: map[string]bool{}, deferred: map[int][]delivery.Result{}}
	if !a.fresh {
		if err := m.Q.RemoveLog(queue.Defer, id); err != nil {
			m.Log.Warning("%s: %v", id, err)
		}
	}
	path := f.Path
	a.open = func() (io.ReadCloser, error) { return delivery.OpenContent(path, msg.Offset, msg.Size) }

	groups := map[destKey][]int{}
	var order []destKey
	for i, r := range msg.Recipients {
		if r.Status.Done() {
			continue
		}
		var tr, hop string
		if fail := msg.Attrs[queue.AttrFail]; fail != "" {
			tr, hop = "error", fail
		} else if m.ResolveFrom != nil {
			tr, hop = m.ResolveFrom(r.Address, msg.Sender)
		} else {
			tr, hop = m.Resolve(r.Address)
		}
		k := destKey{transport: tr, nexthop: hop}
		if _, per := m.limits(tr); per == 1 {
			k.rcpt = strings.ToLower(r.Address)
		}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	jobs := []*job{}
	for _, k := range order {
		_, per := m.limits(k.transport)
		d := m.dest(k)
		idx := groups[k]
		sortRecipients(msg, idx)
		for len(idx) > 0 {
			n := min(per, len(idx))
			jobs = append(jobs, &job{msg: a, dest: d, rcpts: delivery.Recipients(msg, idx[:n]...)})
			idx = idx[n:]
		}
	}
	a.pending = len(jobs)
	m.msgs[id] = a
	return jobs
}

// sortRecipients orders one destination's recipients as Postfix's qmgr
// does before it hands them out: by domain (case-insensitively), then by
// address, those without a domain last. An LMTP server sees the RCPT TO
// commands in this order (Dovecot numbers its replies after it).
func sortRecipients(msg *queue.Message, idx []int) {
	domain := func(addr string) (string, bool) {
		at := strings.LastIndexByte(addr, '@')
		if at < 0 {
			return "", false
		}
		return strings.ToLower(addr[at:]), true
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		a, b := msg.Recipients[i].Address, msg.Recipients[j].Address
		da, oka := domain(a)
		db, okb := domain(b)
		if oka != okb {
			if oka {
				return -1
			}
			return 1
		}
		if c := strings.Compare(da, db); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

// suspended is why deliveries to d are not tried now, with the status
// code, or "".
func (m *Manager) suspended(d *dest) (why, dsn string) {
	if d.key.transport == "" {
		return d.key.nexthop, "4.3.0" // the resolver's failure
	}
	now := m.now()
	if t, ok := m.dead[d.key.transport]; ok {
		if now.Before(t.until) {
			return t.reason, "4.3.0"
		}
		delete(m.dead, d.key.transport)
	}
	if !d.deadUntil.IsZero() {
		if now.Before(d.deadUntil) {
			return "delivery temporarily suspended: " + d.deadReason, d.deadDSN
		}
		// Tried again, carefully.
		d.deadUntil, d.failures, d.window = time.Time{}, 0, 1
	}
	return "", ""
}

// dispatch starts d's waiting deliveries its window allows, each in its
// own goroutine that reports on m.done; a suspended destination's
// deliveries are deferred at once, without trying them.
func (m *Manager) dispatch(d *dest) {
	if why, dsn := m.suspended(d); why != "" {
		todo := d.todo
		d.todo = nil
		for _, j := range todo {
			dl := m.delays(j)
			var res []delivery.Result
			for _, r := range j.rcpts {
				res = append(res, m.deferralDSN(j.msg.f.ID, &j.msg.f.Message, r, dsn, why, dl))
			}
			m.report(j, res, dl)
		}
		return
	}
	for d.busy < d.window && len(d.todo) > 0 {
		j := d.todo[0]
		d.todo = d.todo[1:]
		d.busy++
		msg := &j.msg.f.Message
		req := delivery.FromMessage(msg, j.msg.f.Path)
		req.Open = j.msg.open
		req.Recipients, req.Transport, req.Nexthop = j.rcpts, d.key.transport, d.key.nexthop
		req.Delays = m.delays(j)
		req.ConnStore = len(d.todo) > 0
		t := m.Transports[d.key.transport]
		ctx := m.ctx
		go func() {
			o := outcome{job: j, delays: req.Delays}
			if t == nil {
				// Not in master.cf.
				o.err = errUnavailable
			} else {
				o.results, o.err = t(ctx, req)
			}
			m.done <- o
		}()
	}
}

func (m *Manager) delays(j *job) delivery.Delays {
	msg := &j.msg.f.Message
	return delivery.Delays{BeforeQmgr: j.msg.start.Sub(msg.Arrival), InQmgr: m.now().Sub(j.msg.start)}
}

// busy is how many deliveries are under way.
func (m *Manager) busy() int {
	n := 0
	for _, d := range m.dests {
		n += d.busy
	}
	return n
}

// finished takes a delivery's report: concurrency feedback for its
// destination, the results into the queue file, and the next deliveries.
func (m *Manager) finished(o outcome) {
	j, d := o.job, o.job.dest
	d.busy--
	if m.ctx.Err() != nil {
		return // stopping: the message stays in the active queue
	}
	id, msg := j.msg.f.ID, &j.msg.f.Message
	var results []delivery.Result
	if o.err != nil {
		// The agent could not be reached: the transport is suspended.
		if o.err != errUnavailable {
			m.Log.Warning("%s", o.err)
		}
		why := "mail transport unavailable"
		retry := m.TransportRetry
		if retry <= 0 {
			retry = 60 * time.Second
		}
		m.dead[d.key.transport] = deadTransport{until: m.now().Add(retry), reason: why}
		for _, r := range j.rcpts {
			results = append(results, m.deferral(id, msg, r, why, o.delays))
		}
	} else {
		results = m.complete(d.key.transport, id, msg, j.rcpts, o.results, o.delays)
		m.feedback(d, results)
	}
	// The destination's next delivery starts before this one's results
	// are written: the agent works while the queue file is updated.
	m.dispatch(d)
	m.report(j, results, o.delays)
	if d.busy == 0 && len(d.todo) == 0 && d.deadUntil.IsZero() {
		delete(m.dests, d.key)
	}
}

var errUnavailable = errorString("mail transport unavailable")

type errorString string

func (e errorString) Error() string { return string(e) }

func (m *Manager) backoff() time.Duration {
	if m.MinBackoff > 0 {
		return m.MinBackoff
	}
	return 300 * time.Second
}

// feedback adjusts d's concurrency window as Postfix's qmgr does: it
// grows by one for each window's worth of deliveries that reached the
// destination, up to the limit, and shrinks by one for each that found it
// dead; a window's worth of failures in a row (a failed cohort) suspends
// the destination for minimal_backoff_time, its mail then deferred
// without a try.
func (m *Manager) feedback(d *dest, results []delivery.Result) {
	dead, deadDSN := "", ""
	for _, r := range results {
		if r.Dead {
			dead, deadDSN = r.Text, r.DSN
			break
		}
	}
	if dead == "" {
		d.failures = 0
		d.successes++
		if d.successes >= d.window && d.window < d.limit {
			d.window++
			d.successes = 0
		}
		return
	}
	d.successes = 0
	d.failures++
	if d.failures >= d.window {
		d.deadUntil = m.now().Add(m.backoff())
		d.deadReason, d.deadDSN = dead, deadDSN
		if !strings.HasPrefix(deadDSN, "4.") {
			d.deadDSN = "4.3.0"
		}
		d.window = 1
		return
	}
	if d.window > 1 {
		d.window--
	}
}

// flushDead forgets which destinations and transports are suspended
// (postqueue -f, sendmail -q).
func (m *Manager) flushDead() {
	clear(m.dead)
	for _, d := range m.dests {
		d.deadUntil, d.failures = time.Time{}, 0
	}
}

// report keeps the results of job j in its message, and finishes the
// message when it was the last delivery.
func (m *Manager) report(j *job, results []delivery.Result, dl delivery.Delays) {
	a := j.msg
	f := a.f
	for _, r := range j.rcpts {
		var mine []delivery.Result
		for _, res := range results {
			if res.Index == r.Index {
				mine = append(mine, res)
			}
		}
		if a.verify {
			m.trace(f, j.dest.key.transport, r.Index, mine, a.logged)
			continue
		}
		if m.record(f, r.Index, mine, a.logged) == queue.TempFail {
			for _, res := range mine {
				if res.Status == delivery.Deferred {
					a.deferred[r.Index] = append(a.deferred[r.Index], res)
				}
			}
		}
	}
	a.pending--
	if a.pending == 0 {
		m.finish(a)
	}
}

// finish ends a message's attempt: deferred recipients of an expired
// message are returned, notifications sent, and the message removed or
// deferred.
func (m *Manager) finish(a *activeMsg) {
	f := a.f
	msg := &f.Message
	id := msg.ID
	defer func() {
		f.Close()
		delete(m.msgs, id)
	}()
	if len(a.deferred) > 0 && m.expired(msg) {
		for idx, rs := range a.deferred {
			for i := range rs {
				rs[i].Status = delivery.Bounced
				rs[i].DSN = permanent(rs[i].DSN)
			}
			m.record(f, idx, rs, a.logged)
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
		if (!a.fresh || a.logged[log]) && !m.notify(msg, a.open, log) {
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
