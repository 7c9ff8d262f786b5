package delivery

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/pkg/queue"
)

func testQueue(t *testing.T) *queue.Queue {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{queue.Incoming, queue.Active, queue.Private} {
		if err := os.Mkdir(filepath.Join(dir, d), 0700); err != nil {
			t.Fatal(err)
		}
	}
	return queue.New(dir)
}

// serve runs a Server with handler h on private/name of q until the test
// ends.
func serve(t *testing.T, q *queue.Queue, name string, h Handler) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(q.Dir, queue.Private, name))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- (&Server{Queue: q, Service: "private/" + name, Handler: h}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// A request crosses the socket with its recipients' DSN parameters and
// route; the agent gets the message and its recorded attributes from the
// queue file, and its results come back.
func TestClientServer(t *testing.T) {
	q := testQueue(t)
	id, err := q.Enqueue(queue.Active, &queue.Message{Sender: "a@x",
		Recipients: []queue.Recipient{{Address: "b@y", Notify: "NEVER", ORCPT: "rfc822;b@y"}, {Address: "c@y"}},
		Attrs:      map[string]string{queue.AttrENVID: "E1", queue.AttrRET: "FULL", queue.AttrClientAddr: "192.0.2.9", queue.AttrSMTPUTF8: "1"}},
		strings.NewReader("Subject: s\n\nhello\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Request, 1)
	serve(t, q, "test", func(_ context.Context, req Request) []Result {
		rc, err := req.Open()
		if err != nil {
			t.Error(err)
			return nil
		}
		body, _ := io.ReadAll(rc)
		rc.Close()
		if string(body) != "Subject: s\n\nhello\n" {
			t.Errorf("content %q", body)
		}
		got <- req
		var res []Result
		for _, r := range req.Recipients {
			res = append(res, Result{Recipient: r, Final: r.Address, Status: Bounced, DSN: "5.1.1", Text: "no", Relay: req.Transport})
		}
		return res
	})
	m, err := q.ReadEnvelope(queue.Active, id)
	if err != nil {
		t.Fatal(err)
	}
	req := Request{QueueID: id, Recipients: Recipients(m, 0, 1), Transport: "test", Nexthop: "[h]:25", Sender: "forged@x"}
	res, err := NewClient(q.Dir, "test").Deliver(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Status != Bounced || res[0].ORCPT != "rfc822;b@y" || res[1].Index != 1 || res[0].Relay != "test" {
		t.Errorf("results %+v", res)
	}
	r := <-got
	if r.Sender != "a@x" || r.ENVID != "E1" || r.RET != "FULL" || !r.SMTPUTF8 || r.ClientAddr != "192.0.2.9" ||
		r.Nexthop != "[h]:25" || r.Recipients[0].Notify != "NEVER" {
		t.Errorf("agent got %+v", r)
	}
}

// A queue manager that stops waiting (its context ends) gets an error at
// once, and the agent's handler sees its context cancelled.
func TestClientGivesUp(t *testing.T) {
	q := testQueue(t)
	id, err := q.Enqueue(queue.Active, &queue.Message{Sender: "a@x", Recipients: []queue.Recipient{{Address: "b@y"}}}, strings.NewReader("x\n"))
	if err != nil {
		t.Fatal(err)
	}
	cancelled := make(chan struct{})
	serve(t, q, "slow", func(ctx context.Context, req Request) []Result {
		<-ctx.Done()
		close(cancelled)
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = NewClient(q.Dir, "slow").Deliver(ctx, Request{QueueID: id, Recipients: []Recipient{{Address: "b@y"}}})
	if err == nil || !strings.Contains(err.Error(), "private/slow") {
		t.Fatalf("Deliver = %v", err)
	}
	<-cancelled
}

// A missing queue file defers every recipient; a missing agent is an
// error naming the transport.
func TestFailures(t *testing.T) {
	q := testQueue(t)
	serve(t, q, "x", func(context.Context, Request) []Result { t.Error("handler called"); return nil })
	res, err := NewClient(q.Dir, "x").Deliver(context.Background(), Request{QueueID: "ABCDEF0123", Transport: "x", Recipients: []Recipient{{Address: "b@y", Index: 3}}})
	if err != nil || len(res) != 1 || res[0].Status != Deferred || res[0].Index != 3 || !strings.HasPrefix(res[0].Text, "cannot open queue file") {
		t.Errorf("missing file: %+v, %v", res, err)
	}
	c := NewClient(q.Dir, "none")
	c.DialTimeout = 100 * time.Millisecond
	if _, err := c.Deliver(context.Background(), Request{QueueID: "ABCDEF0123"}); err == nil || !strings.HasPrefix(err.Error(), "connect to transport private/none: ") {
		t.Errorf("no agent: %v", err)
	}
}
