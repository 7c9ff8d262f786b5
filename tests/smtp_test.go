package tests

import (
	"strings"
	"testing"

	"postdove/compat/oracle"
	"postdove/pkg/queue"
)

// A relayhost that accepts the connection and then stalls (smtp-sink -w:
// DATA answered after ten minutes) holds up neither local mail nor
// postfix stop: the smtp deliveries under way end when the queue manager
// goes, and their mail stays queued.
func TestSMTPStalledRelayhost(t *testing.T) {
	sink := oracle.StartSink(t, "127.0.0.2", "-w", "600")
	l := labStart(t, "relayhost = "+sink.Hop()+"\n", "")
	alice := l.user("pdtsmtal")
	for i := 0; i < 3; i++ {
		if res := l.sendmail("Subject: stalled\n\nbody\n", "x@remote.example"); res.Code != 0 {
			t.Fatalf("sendmail: %+v", res)
		}
	}
	l.waitFor("the stalled deliveries", func() bool {
		ids, _ := queue.New(l.QueueDir).List(queue.Active)
		return len(ids) == 3
	})
	if res := l.sendmail("Subject: meanwhile\n\nlocal body\n", alice.Name); res.Code != 0 {
		t.Fatalf("sendmail: %+v", res)
	}
	l.waitMbox(alice.Name, "local body")
	if res := oracle.RunLimit(l.Command("postfix", "stop"), "", oracle.StartLimit); res.Code != 0 {
		t.Fatalf("postfix stop: %+v", res)
	}
	n := 0
	for _, name := range []string{queue.Incoming, queue.Active, queue.Deferred} {
		ids, _ := queue.New(l.QueueDir).List(name)
		n += len(ids)
	}
	if n != 3 {
		t.Errorf("%d messages queued after stop, want the 3 stalled ones", n)
	}
	if got := sink.Read(t); strings.Contains(got, "body") {
		t.Errorf("the stalled sink got a message:\n%s", got)
	}
}
