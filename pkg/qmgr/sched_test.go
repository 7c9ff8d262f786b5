package qmgr

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postdove/pkg/delivery"
	"postdove/pkg/queue"
)

// agent is a delivery agent served over the real socket protocol on
// private/<name> of the rig's queue; its handler is the test's.
type agent struct {
	mu       sync.Mutex
	requests []delivery.Request
	busy     int
	maxBusy  int
}

func (r *rig) agent(name string, h func(ctx context.Context, req delivery.Request) []delivery.Result) *agent {
	r.t.Helper()
	os.MkdirAll(filepath.Join(r.q.Dir, queue.Private), 0700)
	ln, err := net.Listen("unix", filepath.Join(r.q.Dir, queue.Private, name))
	if err != nil {
		r.t.Fatal(err)
	}
	a := &agent{}
	srv := &delivery.Server{Queue: r.q, Service: "private/" + name, Handler: func(ctx context.Context, req delivery.Request) []delivery.Result {
		a.mu.Lock()
		a.requests = append(a.requests, req)
		a.busy++
		a.maxBusy = max(a.maxBusy, a.busy)
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			a.busy--
			a.mu.Unlock()
		}()
		return h(ctx, req)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	r.t.Cleanup(func() { cancel(); <-done })
	r.m.Transports[name] = delivery.NewClient(r.q.Dir, name).Deliver
	return a
}

func (a *agent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.requests)
}

func sent(req delivery.Request) []delivery.Result {
	var out []delivery.Result
	for _, rc := range req.Recipients {
		out = append(out, delivery.Result{Recipient: rc, Final: rc.Address, Status: delivery.Sent, DSN: "2.0.0", Text: "250 ok", Relay: "sink"})
	}
	return out
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Recipients at one destination share one request, up to the transport's
// recipient limit; each destination gets its own.
func TestRecipientsShareRequests(t *testing.T) {
	r := newRig(t)
	r.m.Resolve = func(a string) (string, string) {
		_, d, _ := strings.Cut(a, "@")
		return "sink", d
	}
	r.m.Limits = func(tr string) (int, int) { return 20, 3 }
	a := r.agent("sink", func(_ context.Context, req delivery.Request) []delivery.Result { return sent(req) })
	id := r.enqueue(r.now, "a@one.example", "b@one.example", "c@two.example", "d@one.example", "e@one.example")
	r.m.Drain()
	if _, err := r.q.Find(id); err == nil {
		t.Fatal("message not removed")
	}
	var got []string
	for _, req := range a.requests {
		var rs []string
		for _, rc := range req.Recipients {
			rs = append(rs, rc.Address)
		}
		got = append(got, req.Nexthop+":"+strings.Join(rs, ","))
	}
	want := map[string]bool{"one.example:a@one.example,b@one.example,d@one.example": true, "one.example:e@one.example": true, "two.example:c@two.example": true}
	if len(got) != len(want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("request %s not expected; all: %v", g, got)
		}
	}
}

// A destination's recipients go out as Postfix's qmgr orders them: by
// domain, case-insensitively, then by address; those without a domain
// last; and the recipient limit cuts the sorted list.
func TestRecipientsSorted(t *testing.T) {
	r := newRig(t)
	r.m.Resolve = func(string) (string, string) { return "sink", "hop" }
	r.m.Limits = func(tr string) (int, int) { return 1, 4 }
	a := r.agent("sink", func(_ context.Context, req delivery.Request) []delivery.Result { return sent(req) })
	r.enqueue(r.now, "z@b.example", "local", "b@A.example", "B@a.example", "a@b.example", "c@a.example")
	r.m.Drain()
	var got []string
	for _, req := range a.requests {
		var rs []string
		for _, rc := range req.Recipients {
			rs = append(rs, rc.Address)
		}
		got = append(got, strings.Join(rs, ","))
	}
	if want := "B@a.example,b@A.example,c@a.example,a@b.example|z@b.example,local"; strings.Join(got, "|") != want {
		t.Errorf("requests %q, want %q", got, want)
	}
}

// No more deliveries run at once at a destination than its window: the
// initial concurrency, growing with successes up to the limit.
func TestDestinationConcurrency(t *testing.T) {
	r := newRig(t)
	r.m.Resolve = func(a string) (string, string) { return "sink", "one.example" }
	r.m.InitialConcurrency = 2
	r.m.Limits = func(string) (int, int) { return 3, 1 }
	release := make(chan struct{})
	a := r.agent("sink", func(_ context.Context, req delivery.Request) []delivery.Result {
		<-release
		return sent(req)
	})
	var ids []string
	for i := 0; i < 10; i++ {
		ids = append(ids, r.enqueue(r.now, "x@one.example"))
	}
	done := make(chan struct{})
	go func() { r.m.Drain(); close(done) }()
	waitFor(t, "two deliveries", func() bool { return a.count() == 2 })
	close(release)
	<-done
	if a.count() != 10 || a.maxBusy > 3 || a.maxBusy < 2 {
		t.Errorf("%d requests, at most %d at once; want 10, 2 to 3", a.count(), a.maxBusy)
	}
}

// A destination that fails as a whole is suspended: its mail is
// deferred with "delivery temporarily suspended: REASON" without a
// connection each time, in the log and in the defer logfile mailq reads.
func TestDeadDestinationIsSuspended(t *testing.T) {
	r := newRig(t)
	r.m.Resolve = func(a string) (string, string) {
		if strings.HasSuffix(a, "@down.example") {
			return "sink", "down.example"
		}
		return "local", "vm2"
	}
	r.m.InitialConcurrency = 1
	a := r.agent("sink", func(_ context.Context, req delivery.Request) []delivery.Result {
		var out []delivery.Result
		for _, rc := range req.Recipients {
			out = append(out, delivery.Result{Recipient: rc, Final: rc.Address, Status: delivery.Deferred, DSN: "4.4.1", Relay: "none",
				Text: "connect to down.example[192.0.2.1]:25: Connection refused", Dead: true})
		}
		return out
	})
	first := r.enqueue(r.now, "x@down.example")
	r.m.Drain()
	second := r.enqueue(r.now, "y@down.example", "alice@vm2")
	r.m.Drain()
	if a.count() != 1 {
		t.Errorf("the suspended destination was tried %d times, want once", a.count())
	}
	if strings.Join(r.delivered, ",") != "alice@vm2" {
		t.Errorf("local deliveries %v", r.delivered)
	}
	log := r.log()
	want := second + ": to=<y@down.example>, relay=none, delay=0, delays=0/0/0/0, dsn=4.4.1, status=deferred (delivery temporarily suspended: connect to down.example[192.0.2.1]:25: Connection refused)"
	if !strings.Contains(log, want) {
		t.Errorf("maillog lacks %q:\n%s", want, log)
	}
	for _, id := range []string{first, second} {
		if _, err := r.q.ReadEnvelope(queue.Deferred, id); err != nil {
			t.Errorf("%s not deferred: %v", id, err)
		}
	}
	reasons, _ := r.q.ReadLog(queue.Defer, second)
	if len(reasons) != 1 || !strings.HasPrefix(reasons[0].Reason, "delivery temporarily suspended: connect to down.example") {
		t.Errorf("defer log %+v", reasons)
	}
	// After minimal_backoff_time it is tried again.
	r.now = r.now.Add(301 * time.Second)
	r.m.scan(queue.Deferred, false)
	r.m.settle()
	if a.count() != 2 {
		t.Errorf("%d tries after the backoff, want 2", a.count())
	}
}

// A destination that accepts a delivery and then says nothing holds up
// neither local mail, nor another destination, nor triggers, nor the
// queue manager's stop.
func TestStalledDestination(t *testing.T) {
	r := newRig(t)
	os.MkdirAll(filepath.Join(r.q.Dir, queue.Public), 0700)
	r.m.Resolve = func(a string) (string, string) {
		_, d, _ := strings.Cut(a, "@")
		switch d {
		case "vm2":
			return "local", "vm2"
		case "stall.example":
			return "stall", d
		}
		return "sink", d
	}
	r.m.Now = nil
	r.m.StopGrace = 100 * time.Millisecond
	stalled := make(chan struct{}, 100)
	s := r.agent("stall", func(ctx context.Context, req delivery.Request) []delivery.Result {
		stalled <- struct{}{}
		<-ctx.Done() // the queue manager gave up
		return nil
	})
	fast := r.agent("sink", func(_ context.Context, req delivery.Request) []delivery.Result { return sent(req) })
	for i := 0; i < 30; i++ {
		r.enqueue(time.Now(), "x@stall.example")
	}
	stop := make(chan struct{})
	done := make(chan error)
	go func() { done <- r.m.Run(stop) }()
	waitFor(t, "the stalled deliveries", func() bool { return s.count() == 5 })
	id := r.enqueue(time.Now(), "alice@vm2", "y@fast.example")
	if err := queue.Trigger(r.q.Dir, "qmgr", queue.QmgrScanIncoming); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "local and other mail", func() bool {
		_, err := r.q.Find(id)
		return err != nil
	})
	r.mu.Lock()
	if strings.Join(r.delivered, ",") != "alice@vm2" || fast.count() != 1 {
		t.Errorf("delivered %v and %d to fast.example", r.delivered, fast.count())
	}
	r.mu.Unlock()
	if s.count() != 5 {
		t.Errorf("%d deliveries to the stalled destination, want its initial concurrency 5", s.count())
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The stalled messages stay in the active queue for the next start.
	if ids, _ := r.q.List(queue.Active); len(ids) != 30 {
		t.Errorf("%d messages in active/, want 30", len(ids))
	}
}

// A transport whose agent cannot be reached is left alone for
// transport_retry_time: its mail is deferred with "mail transport
// unavailable" without a try, and the queue manager warns once.
func TestUnreachableTransportRetry(t *testing.T) {
	r := newRig(t)
	r.m.TransportRetry = 60 * time.Second
	tries := 0
	r.m.Transports["local"] = func(context.Context, delivery.Request) ([]delivery.Result, error) {
		tries++
		return nil, errors.New("connect to transport private/local: Connection refused")
	}
	first := r.enqueue(r.now, "alice@vm2")
	r.m.Drain()
	second := r.enqueue(r.now, "bob@vm2")
	r.m.Drain()
	if tries != 1 {
		t.Errorf("%d tries, want 1", tries)
	}
	log := r.log()
	for _, id := range []string{first, second} {
		if !strings.Contains(log, id+": to=<") || !strings.Contains(log, "dsn=4.3.0, status=deferred (mail transport unavailable)") {
			t.Errorf("%s: maillog:\n%s", id, log)
		}
	}
	if strings.Count(log, "warning: connect to transport private/local: Connection refused") != 1 {
		t.Errorf("maillog:\n%s", log)
	}
	r.now = r.now.Add(61 * time.Second)
	third := r.enqueue(r.now, "carol@vm2")
	r.m.Drain()
	if tries != 2 {
		t.Errorf("%d tries after transport_retry_time, want 2 (%s)", tries, third)
	}
}

// With ResolveFrom the route may depend on the sender.
func TestResolveFromSender(t *testing.T) {
	r := newRig(t)
	var senders []string
	r.m.ResolveFrom = func(a, sender string) (string, string) {
		senders = append(senders, sender)
		return "local", "vm2"
	}
	r.enqueue(r.now, "alice@vm2")
	r.m.Drain()
	if strings.Join(senders, ",") != "root@vm2" || strings.Join(r.delivered, ",") != "alice@vm2" {
		t.Errorf("senders %v, delivered %v", senders, r.delivered)
	}
}

// With a recipient limit of 1 the concurrency limit is per recipient, as
// in Postfix: three mailboxes at one next hop get a delivery each at once
// under a limit of 1.
func TestPerRecipientConcurrency(t *testing.T) {
	r := newRig(t)
	r.m.Resolve = func(string) (string, string) { return "sink", "vm2" }
	r.m.Limits = func(string) (int, int) { return 1, 1 }
	release := make(chan struct{})
	a := r.agent("sink", func(_ context.Context, req delivery.Request) []delivery.Result {
		<-release
		return sent(req)
	})
	r.enqueue(r.now, "a@vm2", "b@vm2", "c@vm2")
	r.enqueue(r.now, "A@vm2")
	done := make(chan struct{})
	go func() { r.m.Drain(); close(done) }()
	waitFor(t, "a delivery per recipient", func() bool { return a.count() == 3 })
	close(release)
	<-done
	if a.count() != 4 || a.maxBusy != 3 {
		t.Errorf("%d requests, at most %d at once; want 4, 3 (a@vm2 and A@vm2 one at a time)", a.count(), a.maxBusy)
	}
}

// The incoming queue is read once per scan and taken into the active
// queue as it has room: mail that arrives during a scan waits for the
// next scan (a trigger), and the scan under way goes on as deliveries
// finish, without a request.
func TestIncomingScanIsIncremental(t *testing.T) {
	r := newRig(t)
	r.m.Concurrency = 2
	r.m.init()
	var first []string
	for i := 0; i < 4; i++ {
		first = append(first, r.enqueue(r.now, "alice@vm2"))
	}
	r.m.in.again = true
	r.m.feed()
	late := r.enqueue(r.now, "bob@vm2")
	active := func() int { ids, _ := r.q.List(queue.Active); return len(ids) }
	if n := active(); n != 2 {
		t.Fatalf("%d messages active, want the limit 2", n)
	}
	for len(r.m.msgs) > 0 {
		r.m.finished(<-r.m.done)
		r.m.feed()
	}
	if len(r.delivered) != 4 {
		t.Fatalf("delivered %v, want the 4 of the first scan", r.delivered)
	}
	if _, err := r.q.ReadEnvelope(queue.Incoming, late); err != nil {
		t.Fatalf("mail that came after the scan was taken without a request: %v", err)
	}
	r.m.in.again = true
	r.m.feed()
	r.m.settle()
	if strings.Join(r.delivered, ",") != "alice@vm2,alice@vm2,alice@vm2,alice@vm2,bob@vm2" {
		t.Errorf("delivered %v", r.delivered)
	}
}
