package erroragent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"postdove/pkg/delivery"
)

func TestHandle(t *testing.T) {
	cases := []struct {
		retry           bool
		nexthop         string
		st              delivery.Status
		dsn, text, word string
	}{
		{false, "5.1.1 bob has left", delivery.Bounced, "5.1.1", "bob has left", "bounced"},
		{false, "", delivery.Bounced, "5.0.0", "Address is undeliverable", "bounced"},
		{false, "no mail here", delivery.Bounced, "5.0.0", "no mail here", "bounced"},
		{false, "4.4.1 odd", delivery.Bounced, "5.0.0", "odd", "bounced"},
		{true, "5.7.1 odd", delivery.Deferred, "4.0.0", "odd", "deferred"},
		{true, "4.3.2 not now", delivery.Deferred, "4.3.2", "not now", "deferred"},
		{true, "address resolver failure", delivery.Deferred, "4.0.0", "address resolver failure", "deferred"},
	}
	for _, c := range cases {
		var lines []string
		a := &Agent{Retry: c.retry, Logf: func(f string, args ...any) { lines = append(lines, fmt.Sprintf(f, args...)) }}
		req := delivery.Request{QueueID: "ABC123", Nexthop: c.nexthop, Arrival: time.Now(),
			Recipients: []delivery.Recipient{{Address: "bob@example.com", Orig: "bob", Index: 2}}}
		res := a.Handle(context.Background(), req)
		if len(res) != 1 || res[0].Status != c.st || res[0].DSN != c.dsn || res[0].Text != c.text || res[0].Index != 2 || res[0].Relay != "none" {
			t.Errorf("%q: %+v", c.nexthop, res)
		}
		want := "ABC123: to=<bob@example.com>, orig_to=<bob>, relay=none, delay=0, delays=0/0/0/0, dsn=" + c.dsn + ", status=" + c.word + " (" + c.text + ")"
		if len(lines) != 1 || lines[0] != want {
			t.Errorf("%q: log %q, want %q", c.nexthop, lines, want)
		}
	}
}

// Under sendmail -bv the line says what delivery would do.
func TestVerify(t *testing.T) {
	var line string
	a := &Agent{Logf: func(f string, args ...any) { line = fmt.Sprintf(f, args...) }}
	a.Handle(context.Background(), delivery.Request{QueueID: "X", Verify: true, Nexthop: "gone", Recipients: []delivery.Recipient{{Address: "a@b"}}})
	if !strings.HasSuffix(line, "status=undeliverable (gone)") {
		t.Errorf("log %q", line)
	}
}
