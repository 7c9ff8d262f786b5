package tests

import (
	"strings"
	"testing"

	"postdove/compat/oracle"
	"postdove/pkg/queue"
)

// TestPostkickWakesPickup: a message put in the maildrop without a
// wakeup waits for pickup's next scan (60 seconds in this master.cf);
// "postkick public pickup W" makes pickup take it at once.
func TestPostkickWakesPickup(t *testing.T) {
	l := labStart(t, "", "")
	u := l.user("kick")
	m := &queue.Message{Sender: "root", Attrs: map[string]string{"uid": "0", "full_name": ""},
		Recipients: []queue.Recipient{{Address: u.Name, Status: queue.Pending}}}
	if _, err := queue.New(l.QueueDir).Enqueue(queue.Maildrop, m, strings.NewReader("Subject: kicked\n\nhello\n")); err != nil {
		t.Fatal(err)
	}
	if res := oracle.Run(l.Command("postkick", "public", "pickup", "W"), ""); res.Code != 0 || res.Stderr != "" {
		t.Fatalf("postkick: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(u.Name, "Subject: kicked")
}
