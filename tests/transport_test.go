package tests

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/delivery"
	"postdove/pkg/queue"
)

// A destination whose agent accepts a delivery and then says nothing (a
// test agent serving master.cf's "stall" service on private/stall, with
// the real protocol) holds up neither local mail, nor mail for another
// destination, nor a flush request, nor postfix stop; the stalled
// messages stay queued.
func TestStalledDestinationDelaysNothingElse(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "pdtstall-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	table := filepath.Join(dir, "transport")
	os.WriteFile(table, []byte("stall.example stall:\nquiet.example discard:\n"), 0o644)
	inst := oracle.StartPostdove(t, oracle.PostfixOptions{
		Hostname: "vm2.example.ops",
		MainCF:   "transport_maps = texthash:" + table + "\n",
		// A service postdove does not run: the test serves it.
		MasterCF: "stall unix - - n - - stalltest\n",
	})
	alice := oracle.AddUser(t, dir, "pdtstal")

	ln, err := net.Listen("unix", filepath.Join(inst.QueueDir, queue.Private, "stall"))
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(inst.QueueDir, queue.Private, "stall"), 0o666)
	var mu sync.Mutex
	stalled := 0
	testDone := make(chan struct{})
	srv := &delivery.Server{Queue: queue.New(inst.QueueDir), Service: "private/stall", Handler: func(ctx context.Context, req delivery.Request) []delivery.Result {
		mu.Lock()
		stalled++
		mu.Unlock()
		select {
		case <-ctx.Done():
		case <-testDone:
		}
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(served) }()
	t.Cleanup(func() { close(testDone); cancel(); <-served })

	for i := 0; i < 10; i++ {
		if res := oracle.Run(inst.Sendmail("-f", "root@vm2.example.ops", "x@stall.example"), "Subject: stalled\n\nbody\n"); res.Code != 0 {
			t.Fatalf("sendmail: %d %s", res.Code, res.Stderr)
		}
	}
	waitUntil(t, "deliveries to the stalled destination", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return stalled >= 5
	})
	for _, to := range []string{alice.Name, "y@quiet.example"} {
		if res := oracle.Run(inst.Sendmail("-f", "root@vm2.example.ops", to), "Subject: meanwhile\n\nlocal body\n"); res.Code != 0 {
			t.Fatalf("sendmail: %d %s", res.Code, res.Stderr)
		}
	}
	mbox := filepath.Join(inst.SpoolDir, alice.Name)
	waitUntil(t, "local mail", func() bool {
		b, _ := os.ReadFile(mbox)
		return strings.Contains(string(b), "local body")
	})
	waitUntil(t, "mail to another destination", func() bool {
		return strings.Contains(inst.ReadMaillog(), "to=<y@quiet.example>, relay=none")
	})
	if res := oracle.Run(inst.Command("postqueue", "-f"), ""); res.Code != 0 {
		t.Errorf("postqueue -f: %d %s", res.Code, res.Stderr)
	}
	mu.Lock()
	if stalled != 5 {
		t.Errorf("%d deliveries under way at the stalled destination, want initial_destination_concurrency 5", stalled)
	}
	mu.Unlock()
	if res := oracle.RunLimit(inst.Command("postfix", "stop"), "", oracle.StartLimit); res.Code != 0 {
		t.Fatalf("postfix stop: %d %s", res.Code, res.Stderr)
	}
	q := queue.New(inst.QueueDir)
	n := 0
	for _, name := range []string{queue.Incoming, queue.Active, queue.Deferred} {
		ids, _ := q.List(name)
		n += len(ids)
	}
	if n != 10 {
		t.Errorf("%d messages queued after stop, want the 10 stalled ones", n)
	}
	if t.Failed() {
		t.Logf("maillog:\n%s", inst.ReadMaillog())
	}
}

// waitUntil polls cond for up to labDeadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(labDeadline); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A destination whose deliveries fail as a whole (a test agent on
// private/down reports the destination dead) is suspended: later mail for
// it is deferred without a try, with "delivery temporarily suspended:
// REASON" in the maillog and in mailq, as Postfix does.
func TestDeadDestinationSuspended(t *testing.T) {
	dir, err := os.MkdirTemp("/var/tmp", "pdtdown-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	table := filepath.Join(dir, "transport")
	os.WriteFile(table, []byte("down.example down:\n"), 0o644)
	inst := oracle.StartPostdove(t, oracle.PostfixOptions{
		Hostname: "vm2.example.ops",
		MainCF:   "transport_maps = texthash:" + table + "\ninitial_destination_concurrency = 1\n",
		MasterCF: "down unix - - n - - downtest\n",
	})
	ln, err := net.Listen("unix", filepath.Join(inst.QueueDir, queue.Private, "down"))
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(inst.QueueDir, queue.Private, "down"), 0o666)
	var mu sync.Mutex
	tries := 0
	srv := &delivery.Server{Queue: queue.New(inst.QueueDir), Service: "private/down", Handler: func(_ context.Context, req delivery.Request) []delivery.Result {
		mu.Lock()
		tries++
		mu.Unlock()
		var out []delivery.Result
		for _, r := range req.Recipients {
			out = append(out, delivery.Result{Recipient: r, Final: r.Address, Status: delivery.Deferred, DSN: "4.4.1", Relay: "none",
				Text: "connect to down.example[192.0.2.1]:25: Connection refused", Dead: true})
		}
		return out
	}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(served) }()
	t.Cleanup(func() { cancel(); <-served })

	send := func() {
		t.Helper()
		if res := oracle.Run(inst.Sendmail("-f", "root@vm2.example.ops", "x@down.example"), "Subject: down\n\nbody\n"); res.Code != 0 {
			t.Fatalf("sendmail: %d %s", res.Code, res.Stderr)
		}
	}
	// With a window of one delivery, one failure is a failed cohort.
	send()
	waitUntil(t, "the failed delivery", func() bool {
		// The agent logs nothing; the message goes back to deferred.
		mu.Lock()
		defer mu.Unlock()
		ids, _ := queue.New(inst.QueueDir).List(queue.Deferred)
		return tries == 1 && len(ids) == 1
	})
	mu.Lock()
	before := tries
	mu.Unlock()
	send()
	defer func() {
		if t.Failed() {
			t.Logf("maillog:\n%s", inst.ReadMaillog())
		}
	}()
	waitUntil(t, "the suspended destination's deferral", func() bool {
		return strings.Contains(inst.ReadMaillog(), "dsn=4.4.1, status=deferred (delivery temporarily suspended: connect to down.example[192.0.2.1]:25: Connection refused)")
	})
	mu.Lock()
	if tries != before {
		t.Errorf("the suspended destination was tried again")
	}
	mu.Unlock()
	res := oracle.Run(inst.Command("mailq"), "")
	if !strings.Contains(res.Stdout, "(delivery temporarily suspended: connect to down.example[192.0.2.1]:25: Connection refused)") ||
		!strings.Contains(res.Stdout, "(connect to down.example[192.0.2.1]:25: Connection refused)") {
		t.Errorf("mailq:\n%s", res.Stdout)
	}
	if t.Failed() {
		t.Logf("maillog:\n%s", inst.ReadMaillog())
	}
}
