package qmgr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postdove/pkg/delivery"
	"postdove/pkg/maillog"
	"postdove/pkg/queue"
)

// rig is a queue in a temp dir with a manager whose local transport is a
// function the test decides the outcome of, per recipient address.
type rig struct {
	t       *testing.T
	q       *queue.Queue
	m       *Manager
	logPath string
	now     time.Time

	mu        sync.Mutex
	outcome   map[string]delivery.Status
	delivered []string
	notified  [][]delivery.Result
	// notifyErr, when set, is what the notifier fails with.
	notifyErr error
	// drop lists recipients the transport returns no result for.
	drop map[string]bool
	// dsn, when set, replaces the status code of deferrals.
	dsn *string
	// reported holds the delivery status reports sent.
	reported [][]delivery.Result
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{queue.Incoming, queue.Active, queue.Deferred, queue.Corrupt, queue.Bounce, queue.Defer, queue.Trace} {
		if err := os.MkdirAll(filepath.Join(dir, n), 0700); err != nil {
			t.Fatal(err)
		}
	}
	r := &rig{t: t, q: queue.New(dir), logPath: filepath.Join(dir, "maillog"), now: time.Now(), outcome: map[string]delivery.Status{}}
	log, err := maillog.New(maillog.Options{File: r.logPath, Program: "qmgr", SyslogName: "postfix", Hostname: "vm2"})
	if err != nil {
		t.Fatal(err)
	}
	r.m = &Manager{
		Q: r.q, Log: log,
		Resolve: func(a string) (string, string) {
			if strings.HasSuffix(a, "@remote.example") {
				return "smtp", "remote.example"
			}
			return "local", "vm2"
		},
		Transports: map[string]Transport{"local": r.deliver},
		Notify: func(m *queue.Message, content func() (io.ReadCloser, error), failed []delivery.Result) (string, error) {
			rc, err := content()
			if err != nil {
				return "", err
			}
			defer rc.Close()
			body, _ := io.ReadAll(rc)
			if !bytes.Contains(body, []byte("Subject: test")) {
				t.Errorf("notifier got content %q", body)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.notifyErr != nil {
				return "", r.notifyErr
			}
			r.notified = append(r.notified, failed)
			return "NOTIFY1", nil
		},
		Report: func(m *queue.Message, content func() (io.ReadCloser, error), results []delivery.Result) (string, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.notifyErr != nil {
				return "", r.notifyErr
			}
			r.reported = append(r.reported, results)
			return "REPORT1", nil
		},
		MinBackoff: 300 * time.Second, MaxBackoff: 4000 * time.Second,
		MaxLifetime: 5 * 24 * time.Hour, BounceLifetime: 5 * 24 * time.Hour,
		Now: func() time.Time { return r.now },
	}
	return r
}

func (r *rig) deliver(_ context.Context, req delivery.Request) ([]delivery.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery.Result
	for _, rc := range req.Recipients {
		if r.drop[rc.Address] {
			continue
		}
		st := r.outcome[rc.Address]
		res := delivery.Result{Recipient: rc, Final: rc.Address, Status: st, Relay: "local"}
		switch st {
		case delivery.Sent:
			res.DSN, res.Text = "2.0.0", "delivered to mailbox"
			if req.Verify {
				res.Text = "delivers to mailbox"
				break
			}
			r.delivered = append(r.delivered, rc.Address)
		case delivery.Deferred:
			res.DSN, res.Text = "4.2.0", "mailbox busy"
			if r.dsn != nil {
				res.DSN = *r.dsn
			}
		case delivery.Bounced:
			res.DSN, res.Text = "5.1.1", `unknown user: "nobody-here"`
		}
		out = append(out, res)
	}
	return out, nil
}

func (r *rig) enqueue(arrival time.Time, rcpts ...string) string {
	r.t.Helper()
	m := &queue.Message{Sender: "root@vm2", Arrival: arrival}
	for _, a := range rcpts {
		m.Recipients = append(m.Recipients, queue.Recipient{Address: a, Status: queue.Pending})
	}
	id, err := r.q.Enqueue(queue.Incoming, m, strings.NewReader("Subject: test\n\nbody\n"))
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

func (r *rig) log() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

func TestDeliveredMessageIsRemoved(t *testing.T) {
	r := newRig(t)
	id := r.enqueue(r.now, "alice@vm2", "bob@vm2")
	r.m.Drain()
	if len(r.delivered) != 2 {
		t.Fatalf("delivered %v, want alice and bob", r.delivered)
	}
	if q, err := r.q.Find(id); err == nil {
		t.Fatalf("message still in %s", q)
	}
	log := r.log()
	for _, want := range []string{
		// Three lines stored as Postfix records: 15 + 2 + 6 bytes.
		id + ": from=<root@vm2>, size=23, nrcpt=2 (queue active)",
		id + ": removed",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}
}

func TestDeferredGoesToDeferredWithBackoff(t *testing.T) {
	r := newRig(t)
	r.outcome["bob@vm2"] = delivery.Deferred
	id := r.enqueue(r.now, "alice@vm2", "bob@vm2")
	r.m.Drain()
	f, err := r.q.Open(queue.Deferred, id)
	if err != nil {
		t.Fatalf("not in deferred: %v", err)
	}
	defer f.Close()
	if f.Recipients[0].Status != queue.Delivered || f.Recipients[1].Status != queue.TempFail {
		t.Errorf("statuses %c %c, want D T", f.Recipients[0].Status, f.Recipients[1].Status)
	}
	st, _ := os.Stat(r.q.Path(queue.Deferred, id))
	if got := st.ModTime().Sub(r.now); got < 299*time.Second || got > 301*time.Second {
		t.Errorf("next attempt in %v, want minimal_backoff_time 300s", got)
	}
	reasons, _ := r.q.ReadLog(queue.Defer, id)
	if len(reasons) != 1 || reasons[0].Reason != "mailbox busy" {
		t.Errorf("defer log %+v", reasons)
	}

	// Not due yet: a deferred scan leaves it alone.
	r.outcome["bob@vm2"] = delivery.Sent
	r.m.scan(queue.Deferred, false)
	r.m.wg.Wait()
	if _, err := r.q.Find(id); err != nil {
		t.Fatalf("message vanished before its retry time: %v", err)
	}
	// Due: only bob is tried again, alice is not delivered twice.
	r.now = r.now.Add(301 * time.Second)
	r.m.scan(queue.Deferred, false)
	r.m.wg.Wait()
	if got := strings.Join(r.delivered, ","); got != "alice@vm2,bob@vm2" {
		t.Errorf("deliveries %s, want alice once then bob", got)
	}
	if _, err := r.q.Find(id); err == nil {
		t.Error("message not removed after the retry delivered it")
	}
}

func TestBounceNotifiesSender(t *testing.T) {
	r := newRig(t)
	r.outcome["nobody-here@vm2"] = delivery.Bounced
	id := r.enqueue(r.now, "nobody-here@vm2", "alice@vm2")
	r.m.Drain()
	if len(r.notified) != 1 || len(r.notified[0]) != 1 || r.notified[0][0].Final != "nobody-here@vm2" {
		t.Fatalf("notifications %+v", r.notified)
	}
	if _, err := r.q.Find(id); err == nil {
		t.Error("bounced message not removed")
	}
	if log := r.log(); !strings.Contains(log, "postfix/bounce[") || !strings.Contains(log, id+": sender non-delivery notification: NOTIFY1") {
		t.Errorf("maillog lacks the bounce line:\n%s", log)
	}
}

func TestExpiredDeferralReturnsToSender(t *testing.T) {
	r := newRig(t)
	r.outcome["bob@vm2"] = delivery.Deferred
	id := r.enqueue(r.now.Add(-6*24*time.Hour), "bob@vm2")
	r.m.Drain()
	if len(r.notified) != 1 || r.notified[0][0].DSN != "5.2.0" {
		t.Fatalf("notifications %+v, want one with 5.2.0", r.notified)
	}
	if log := r.log(); !strings.Contains(log, id+": from=<root@vm2>, status=expired, returned to sender") {
		t.Errorf("maillog lacks the expiry line:\n%s", log)
	}
	if _, err := r.q.Find(id); err == nil {
		t.Error("expired message still queued")
	}
}

func TestMissingTransportDefers(t *testing.T) {
	r := newRig(t)
	id := r.enqueue(r.now, "carol@remote.example")
	r.m.Drain()
	if _, err := r.q.ReadEnvelope(queue.Deferred, id); err != nil {
		t.Fatalf("remote mail not deferred: %v", err)
	}
	if log := r.log(); !strings.Contains(log, "to=<carol@remote.example>, relay=none") || !strings.Contains(log, "status=deferred (delivery temporarily suspended: mail transport smtp is not available)") {
		t.Errorf("maillog:\n%s", log)
	}
}

func TestCorruptFileIsSetAsideAndOthersFlow(t *testing.T) {
	r := newRig(t)
	bad := "ABCDEF123"
	if err := os.WriteFile(r.q.Path(queue.Incoming, bad), []byte("not a queue file\n"), 0600); err != nil {
		t.Fatal(err)
	}
	good := r.enqueue(r.now, "alice@vm2")
	r.m.Drain()
	if _, err := os.Stat(r.q.Path(queue.Corrupt, bad)); err != nil {
		t.Errorf("corrupt file not in corrupt/: %v", err)
	}
	if _, err := r.q.Find(good); err == nil || len(r.delivered) != 1 {
		t.Errorf("good message not delivered: %v %v", err, r.delivered)
	}
	if log := r.log(); !strings.Contains(log, "warning: "+bad+": corrupt queue file: ") ||
		!strings.Contains(log, `warning: saving corrupt file "`+bad+`" from queue "active" to queue "corrupt"`) {
		t.Errorf("maillog lacks the corrupt line:\n%s", log)
	}
}

// retry makes the deferred messages due and runs the queue manager on them.
func (r *rig) retry() {
	r.now = r.now.Add(5000 * time.Second)
	r.m.scan(queue.Deferred, false)
	r.m.wg.Wait()
}

func TestFailedNotificationIsRetried(t *testing.T) {
	r := newRig(t)
	r.outcome["nobody-here@vm2"] = delivery.Bounced
	r.notifyErr = errors.New("cleanup: disk full")
	id := r.enqueue(r.now, "nobody-here@vm2", "alice@vm2")
	r.m.Drain()
	if _, err := r.q.ReadEnvelope(queue.Deferred, id); err != nil {
		t.Fatalf("message not kept for the notification: %v", err)
	}
	if log := r.log(); !strings.Contains(log, id+": sender non-delivery notification failed: cleanup: disk full") {
		t.Errorf("maillog lacks the failure:\n%s", log)
	}
	// The next attempt sends the notification, about nobody-here only,
	// without delivering anything twice.
	r.notifyErr = nil
	r.retry()
	if len(r.notified) != 1 || len(r.notified[0]) != 1 || r.notified[0][0].Final != "nobody-here@vm2" ||
		r.notified[0][0].DSN != "5.1.1" || r.notified[0][0].Text != `unknown user: "nobody-here"` {
		t.Fatalf("notifications %+v, want one about nobody-here", r.notified)
	}
	if got := strings.Join(r.delivered, ","); got != "alice@vm2" {
		t.Errorf("deliveries %s, want alice once", got)
	}
	if _, err := r.q.Find(id); err == nil {
		t.Error("message not removed after its notification was sent")
	}
	if entries, _ := r.q.ReadLog(queue.Bounce, id); len(entries) != 0 {
		t.Errorf("bounce logfile left: %+v", entries)
	}
}

func TestExpiredNotificationFailureIsRetried(t *testing.T) {
	r := newRig(t)
	r.outcome["bob@vm2"] = delivery.Deferred
	r.notifyErr = errors.New("no space")
	id := r.enqueue(r.now.Add(-6*24*time.Hour), "bob@vm2")
	r.m.Drain()
	r.notifyErr = nil
	r.retry()
	if len(r.notified) != 1 || r.notified[0][0].DSN != "5.2.0" || r.notified[0][0].Text != "mailbox busy" {
		t.Fatalf("notifications %+v, want bob's 5.2.0", r.notified)
	}
	if _, err := r.q.Find(id); err == nil {
		t.Error("expired message still queued")
	}
}

func TestMissingResultIsDeferred(t *testing.T) {
	r := newRig(t)
	r.drop = map[string]bool{"bob@vm2": true}
	r.outcome["carol@vm2"] = delivery.Status(7) // no such status: not a result
	id := r.enqueue(r.now, "carol@vm2")
	r.m.Drain()
	if f, err := r.q.ReadEnvelope(queue.Deferred, id); err != nil || f.Recipients[0].Status != queue.TempFail {
		t.Fatalf("carol's unknown status counted as a result: %v", err)
	}
	if log := r.log(); !strings.Contains(log, "warning: "+id+": transport local: unknown status 7 for recipient carol@vm2") {
		t.Errorf("maillog:\n%s", log)
	}

	id = r.enqueue(r.now, "alice@vm2", "bob@vm2")
	r.m.Drain()
	f, err := r.q.Open(queue.Deferred, id)
	if err != nil {
		t.Fatalf("message removed although bob got no result: %v", err)
	}
	defer f.Close()
	if f.Recipients[0].Status != queue.Delivered || f.Recipients[1].Status != queue.TempFail {
		t.Errorf("statuses %c %c, want D T", f.Recipients[0].Status, f.Recipients[1].Status)
	}
	log := r.log()
	for _, want := range []string{
		"warning: " + id + ": transport local: no result for recipient bob@vm2",
		id + ": to=<bob@vm2>, relay=none, ",
		"dsn=4.3.0, status=deferred (unknown mail transport error)",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}
	reasons, _ := r.q.ReadLog(queue.Defer, id)
	if len(reasons) != 1 || reasons[0].Reason != "unknown mail transport error" {
		t.Errorf("defer log %+v", reasons)
	}
}

func TestExpiredWithEmptyDSN(t *testing.T) {
	for _, dsn := range []string{"", "4", "x.y", "4.2.0"} {
		r := newRig(t)
		r.outcome["bob@vm2"] = delivery.Deferred
		r.dsn = &dsn
		id := r.enqueue(r.now.Add(-6*24*time.Hour), "bob@vm2")
		r.m.Drain()
		want := "5.0.0"
		if dsn == "4.2.0" {
			want = "5.2.0"
		}
		if len(r.notified) != 1 || r.notified[0][0].DSN != want {
			t.Errorf("dsn %q: notifications %+v, want one with %s", dsn, r.notified, want)
		}
		if _, err := r.q.Find(id); err == nil {
			t.Errorf("dsn %q: expired message still queued", dsn)
		}
	}
}

func TestDeferLogFollowsTheMessage(t *testing.T) {
	r := newRig(t)
	r.outcome["bob@vm2"] = delivery.Deferred
	id := r.enqueue(r.now, "bob@vm2")
	r.m.Drain()
	r.retry()
	// Each attempt replaces the reasons of the one before.
	if reasons, _ := r.q.ReadLog(queue.Defer, id); len(reasons) != 1 {
		t.Errorf("defer log after two attempts: %+v, want one reason", reasons)
	}
	r.outcome["bob@vm2"] = delivery.Sent
	r.retry()
	if _, err := r.q.Find(id); err == nil {
		t.Fatal("message not removed")
	}
	for _, l := range queue.LogQueues {
		if ents, _ := os.ReadDir(filepath.Join(r.q.Dir, l)); len(ents) != 0 {
			if sub, _ := os.ReadDir(filepath.Join(r.q.Dir, l, ents[0].Name())); !ents[0].IsDir() || len(sub) != 0 {
				t.Errorf("%s/ still holds %v %v", l, ents, sub)
			}
		}
	}
}

func TestUnhandledMessageGoesToCorrupt(t *testing.T) {
	r := newRig(t)
	resolve := r.m.Resolve
	r.m.Resolve = func(a string) (string, string) {
		if a == "boom@vm2" {
			var s []string
			_ = s[1] // a bug the queue file's data runs into
		}
		return resolve(a)
	}
	bad := r.enqueue(r.now, "boom@vm2")
	good := r.enqueue(r.now, "alice@vm2")
	r.m.Drain()
	if _, err := os.Stat(r.q.Path(queue.Corrupt, bad)); err != nil {
		t.Errorf("message not in corrupt/: %v", err)
	}
	if _, err := r.q.Find(good); err == nil || len(r.delivered) != 1 {
		t.Errorf("good message not delivered: %v %v", err, r.delivered)
	}
	if log := r.log(); !strings.Contains(log, "warning: "+bad+": corrupt queue file: cannot process: runtime error: index out of range") {
		t.Errorf("maillog:\n%s", log)
	}
}

func TestVerifyReportsWithoutDelivering(t *testing.T) {
	r := newRig(t)
	r.outcome["nobody-here@vm2"] = delivery.Bounced
	m := &queue.Message{Sender: "root@vm2", Arrival: r.now, Attrs: map[string]string{queue.AttrTraceFlags: queue.TraceVerify}}
	for _, a := range []string{"alice@vm2", "nobody-here@vm2", "carol@remote.example"} {
		m.Recipients = append(m.Recipients, queue.Recipient{Address: a, Orig: strings.TrimSuffix(a, "@vm2")})
	}
	r.notifyErr = errors.New("no space")
	id, err := r.q.Enqueue(queue.Incoming, m, strings.NewReader("Subject: probe\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	r.m.Drain()
	// The report could not be queued: it is sent at the next attempt,
	// without asking the transports again.
	r.notifyErr = nil
	r.outcome["alice@vm2"] = delivery.Bounced
	r.retry()
	if len(r.delivered) != 0 || len(r.notified) != 0 {
		t.Errorf("delivered %v, notified %v: a probe is only reported on", r.delivered, r.notified)
	}
	if len(r.reported) != 1 || len(r.reported[0]) != 3 {
		t.Fatalf("reports %+v, want one about three recipients", r.reported)
	}
	want := []struct {
		final, orig string
		st          delivery.Status
		dsn, text   string
	}{
		{"alice@vm2", "alice", delivery.Sent, "2.0.0", "delivery via local: delivers to mailbox"},
		{"nobody-here@vm2", "nobody-here", delivery.Bounced, "5.1.1", `delivery via local: unknown user: "nobody-here"`},
		{"carol@remote.example", "carol@remote.example", delivery.Bounced, "4.3.0", "delivery temporarily suspended: mail transport smtp is not available"},
	}
	for i, w := range want {
		g := r.reported[0][i]
		if g.Final != w.final || g.Orig != w.orig || g.Status != w.st || g.DSN != w.dsn || g.Text != w.text {
			t.Errorf("report line %d: %+v, want %+v", i, g, w)
		}
	}
	if _, err := r.q.Find(id); err == nil {
		t.Error("probe still queued after its report")
	}
	log := r.log()
	for _, want := range []string{
		"warning: " + id + ": sender delivery status notification failed: no space",
		"postfix/bounce[",
		id + ": sender delivery status notification: REPORT1",
		"to=<carol@remote.example>, relay=none, ",
		"status=undeliverable (delivery temporarily suspended",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q:\n%s", want, log)
		}
	}
}

// A bounce logfile damaged by a line too long to read still yields its
// notification, instead of keeping the message for ever.
func TestDamagedBounceLog(t *testing.T) {
	r := newRig(t)
	r.outcome["nobody-here@vm2"] = delivery.Bounced
	r.notifyErr = errors.New("no space")
	id := r.enqueue(r.now, "nobody-here@vm2")
	r.m.Drain()
	f, err := os.OpenFile(r.q.Path(queue.Bounce, id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("reason=" + strings.Repeat("x", 2<<20) + "\n")
	f.Close()
	r.notifyErr = nil
	r.retry()
	if len(r.notified) != 1 || r.notified[0][0].Final != "nobody-here@vm2" {
		t.Fatalf("notifications %+v", r.notified)
	}
	if _, err := r.q.Find(id); err == nil {
		t.Error("message kept")
	}
}
