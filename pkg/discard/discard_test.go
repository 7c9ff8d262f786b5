package discard

import (
	"context"
	"fmt"
	"testing"
	"time"

	"postdove/pkg/delivery"
)

func TestHandle(t *testing.T) {
	for _, c := range []struct{ nexthop, dsn, text string }{
		{"example.com", "2.0.0", "example.com"},
		{"2.7.0 dropped", "2.7.0", "dropped"},
		{"5.1.1 odd", "2.0.0", "odd"},
	} {
		var lines []string
		a := &Agent{Logf: func(f string, args ...any) { lines = append(lines, fmt.Sprintf(f, args...)) }}
		res := a.Handle(context.Background(), delivery.Request{QueueID: "Q1", Nexthop: c.nexthop, Arrival: time.Now(),
			Recipients: []delivery.Recipient{{Address: "a@example.com", Index: 0}, {Address: "b@example.com", Index: 1}}})
		if len(res) != 2 || res[1].Status != delivery.Sent || res[1].DSN != c.dsn || res[1].Text != c.text || res[1].Index != 1 {
			t.Errorf("%q: %+v", c.nexthop, res)
		}
		want := "Q1: to=<b@example.com>, relay=none, delay=0, delays=0/0/0/0, dsn=" + c.dsn + ", status=sent (" + c.text + ")"
		if len(lines) != 2 || lines[1] != want {
			t.Errorf("%q: log %q, want %q", c.nexthop, lines, want)
		}
	}
}
