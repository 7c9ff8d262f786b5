package postqueue

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/pkg/queue"
)

func TestFlushSiteAndID(t *testing.T) {
	dir := t.TempDir()
	for _, d := range append(append([]string{}, queue.MessageQueues...), queue.Defer, queue.Public) {
		os.Mkdir(filepath.Join(dir, d), 0700)
	}
	q := queue.New(dir)
	mk := func(rcpt string) string {
		id, err := q.Enqueue(queue.Deferred, &queue.Message{Sender: "a@b", Recipients: []queue.Recipient{{Address: rcpt}}}, strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Hour)
		q.Touch(queue.Deferred, id, later)
		return id
	}
	site, other := mk("u@Example.COM"), mk("u@elsewhere.test")
	var f *Fatal
	if err := FlushSite(q, "example.com", nil); !errors.As(err, &f) || f.Text != `Flush service is not configured for destination "example.com"` {
		t.Fatalf("unlisted site: %v", err)
	}
	// Nobody listens on public/qmgr: the mail system is down.
	if err := FlushSite(q, "example.com", []string{"example.com"}); !errors.As(err, &f) || f.Text != "Cannot flush mail queue - mail system is down" {
		t.Fatalf("no qmgr: %v", err)
	}
	ch, closer, err := queue.Listen(dir, "qmgr")
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if err := FlushSite(q, "example.com", []string{".com"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []byte{queue.QmgrFlushDead, queue.QmgrScanAll} {
		if got := <-ch; got != want {
			t.Errorf("trigger %c, want %c", got, want)
		}
	}
	due := func(id string) bool {
		fi, _ := os.Stat(q.Path(queue.Deferred, id))
		return !fi.ModTime().After(time.Now())
	}
	if !due(site) || due(other) {
		t.Errorf("due: site %v, other %v", due(site), due(other))
	}
	if err := FlushID(q, "bad!"); !errors.As(err, &f) || f.Text != `Cannot flush queue ID - invalid name: "bad!"` {
		t.Errorf("bad id: %v", err)
	}
	if err := FlushID(q, other); err != nil || !due(other) {
		t.Errorf("FlushID: %v, due %v", err, due(other))
	}
}

func TestQueueDirMissing(t *testing.T) {
	q := queue.New(filepath.Join(t.TempDir(), "nope"))
	var b strings.Builder
	err := PrintQueue(&b, q)
	if err == nil || err.Error() != "chdir "+q.Dir+": No such file or directory" {
		t.Errorf("got %v", err)
	}
}

func TestExternalForm(t *testing.T) {
	for in, want := range map[string]string{
		"a@b": "a@b", `held "q"@x`: `"held \"q\""@x`, "a..b@x": `"a..b"@x`, "": "", "a b": `"a b"`,
	} {
		if got := externalForm(in); got != want {
			t.Errorf("externalForm(%q) = %q, want %q", in, got, want)
		}
	}
}
