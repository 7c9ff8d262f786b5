package local

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A verify request (sendmail -bv) says what delivery would do and does
// none of it: no mailbox is created, no command runs, no file is written.
func TestVerifyDeliversNothing(t *testing.T) {
	e := newEnv(t, map[string]string{"alias_maps": "texthash:$DIR/aliases"})
	ran, file := filepath.Join(e.dir, "ran"), filepath.Join(e.dir, "file")
	e.write("aliases", "list "+userB+", \"|/usr/bin/touch "+ran+"\", "+file+", remote@example.net\n", 0644)
	req := Request{QueueID: "3F2A81234B", Sender: "carol@example.org", Arrival: time.Now(), Verify: true,
		Open:       func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(testMsg)), nil },
		Recipients: []Recipient{{Address: userA + "@" + domain}, {Address: "list@" + domain, Index: 1}, {Address: "nosuch@" + domain, Index: 2}}}
	rs := e.agent.Deliver(req)
	var got []string
	for _, r := range rs {
		got = append(got, r.Status.String()+" "+r.Final+" "+r.Text)
	}
	want := []string{
		"sent " + userA + "@" + domain + " delivers to mailbox",
		"sent " + userB + "@" + domain + " delivers to mailbox",
		"sent list@" + domain + " delivers to command: /usr/bin/touch " + ran,
		"sent list@" + domain + " delivers to file: " + file,
		"sent remote@example.net forwards to remote@example.net",
		"bounced nosuch@" + domain + ` unknown user: "nosuch"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, p := range []string{ran, file, filepath.Join(e.spool, userA), filepath.Join(e.spool, userB)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	log := e.logbuf.String()
	if !strings.Contains(log, "dsn=2.0.0, status=deliverable (delivers to mailbox)") ||
		!strings.Contains(log, `dsn=5.1.1, status=undeliverable (unknown user: "nosuch")`) {
		t.Errorf("log:\n%s", log)
	}
}
