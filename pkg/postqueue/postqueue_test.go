package postqueue

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/pkg/queue"
)

// testQueue makes an empty queue directory tree.
func testQueue(t *testing.T) *queue.Queue {
	t.Helper()
	dir := t.TempDir()
	for _, d := range append(append([]string{}, queue.MessageQueues...), queue.Defer, queue.Public) {
		if err := os.Mkdir(filepath.Join(dir, d), 0700); err != nil {
			t.Fatal(err)
		}
	}
	return queue.New(dir)
}

// startService runs serve on public/NAME until the test ends.
func startService(t *testing.T, q *queue.Queue, name string, serve func(net.Listener) error) {
	t.Helper()
	ln, err := ListenService(q.Dir, name)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(q.Dir, queue.Public, name))
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0666 {
		t.Fatalf("public/%s: %v %v", name, fi, err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("serve %s: %v", name, err)
		}
	})
}

func deferred(t *testing.T, q *queue.Queue, rcpt string) string {
	t.Helper()
	id, err := q.Enqueue(queue.Deferred, &queue.Message{Sender: "a@b", Recipients: []queue.Recipient{{Address: rcpt}}}, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	q.Touch(queue.Deferred, id, time.Now().Add(time.Hour))
	return id
}

func wantFatal(t *testing.T, err error, warning, text string) {
	t.Helper()
	var f *Fatal
	if !errors.As(err, &f) || f.Text != text || f.Warning != warning {
		t.Errorf("got %#v (%v), want fatal %q with warning %q", f, err, text, warning)
	}
}

func TestFlushService(t *testing.T) {
	q := testQueue(t)
	site, other := deferred(t, q, "u@Example.COM"), deferred(t, q, "u@elsewhere.test")
	due := func(id string) bool {
		fi, err := os.Stat(q.Path(queue.Deferred, id))
		return err == nil && !fi.ModTime().After(time.Now())
	}
	wantFatal(t, FlushSite(q, "example.com", nil), "", `Flush service is not configured for destination "example.com"`)
	// Nobody listens on public/flush: the mail system is down.
	wantFatal(t, FlushSite(q, "example.com", []string{"example.com"}),
		"connect to public/flush: No such file or directory", "Cannot flush mail queue - mail system is down")
	wantFatal(t, FlushID(q, site), "connect to public/flush: No such file or directory", "Cannot flush mail queue - mail system is down")
	if due(site) {
		t.Fatal("flushed with the mail system down")
	}

	// The service only flushes sites in its own fast_flush_domains.
	startService(t, q, FlushService, func(ln net.Listener) error { return ServeFlush(ln, q, []string{".com"}, t.Logf) })
	wantFatal(t, FlushSite(q, "elsewhere.test", []string{"elsewhere.test"}), "", `Flush service is not configured for destination "elsewhere.test"`)
	// The service is up but qmgr is not.
	wantFatal(t, FlushSite(q, "example.com", []string{"example.com"}), "", "Cannot flush mail queue - mail system is down")

	ch, closer, err := queue.Listen(q.Dir, "qmgr")
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	wakeups := func() {
		t.Helper()
		for _, want := range []byte{queue.QmgrFlushDead, queue.QmgrScanAll} {
			select {
			case got := <-ch:
				if got != want {
					t.Errorf("trigger %c, want %c", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no trigger %c", want)
			}
		}
	}
	if err := FlushSite(q, "example.com", []string{"example.com"}); err != nil {
		t.Fatal(err)
	}
	wakeups()
	if !due(site) || due(other) {
		t.Errorf("after -s: due: site %v, other %v", due(site), due(other))
	}
	wantFatal(t, FlushID(q, "bad!"), "", `Cannot flush queue ID - invalid name: "bad!"`)
	if err := FlushID(q, other); err != nil {
		t.Fatal(err)
	}
	wakeups()
	if !due(other) {
		t.Error("after -i: not due")
	}
	// An unknown ID is no error, as in Postfix.
	if err := FlushID(q, "ABCDEF123"); err != nil {
		t.Error(err)
	}
	wakeups()
}

func TestShowqService(t *testing.T) {
	q := testQueue(t)
	id := deferred(t, q, `"odd user"@example.com`)
	var direct, directJSON strings.Builder
	if err := PrintQueue(&direct, q); err != nil {
		t.Fatal(err)
	}
	if err := PrintJSON(&directJSON, q); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(direct.String(), id) {
		t.Fatalf("listing lacks %s:\n%s", id, direct.String())
	}
	var warnings []string
	l := &Lister{Q: q, MailName: "Postfix", Warn: func(s string) { warnings = append(warnings, s) }}

	// Down: root (these tests run as root) reads the queue itself, after
	// Postfix's warning.
	if os.Geteuid() == 0 {
		var b strings.Builder
		if err := l.List(&b, false); err != nil || b.String() != direct.String() {
			t.Errorf("down: %v\n%s", err, b.String())
		}
		want := "Mail system is down -- accessing queue directly (Connect to the Postfix showq service: No such file or directory)"
		if len(warnings) != 1 || warnings[0] != want {
			t.Errorf("warnings %q", warnings)
		}
		warnings = nil
	}

	startService(t, q, ShowqService, func(ln net.Listener) error { return ServeShowq(ln, q, t.Logf) })
	for _, json := range []bool{false, true} {
		var b strings.Builder
		if err := l.List(&b, json); err != nil {
			t.Fatal(err)
		}
		want := direct.String()
		if json {
			want = directJSON.String()
		}
		if b.String() != want {
			t.Errorf("json=%v through showq:\n%s\nwant:\n%s", json, b.String(), want)
		}
	}
	if warnings != nil {
		t.Errorf("warnings with showq up: %q", warnings)
	}

	// A stale socket nobody listens on.
	sock := filepath.Join(q.Dir, queue.Public, ShowqService)
	os.Remove(sock)
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if os.Geteuid() == 0 {
		var b strings.Builder
		if err := l.List(&b, false); err != nil || b.String() != direct.String() {
			t.Errorf("stale socket: %v\n%s", err, b.String())
		}
		if len(warnings) != 1 || !strings.HasSuffix(warnings[0], "(Connect to the Postfix showq service: Connection refused)") {
			t.Errorf("warnings %q", warnings)
		}
	}
}

// TestServiceBadInput sends junk to the services: each gets no listing
// and no flush, and the service keeps answering.
func TestServiceBadInput(t *testing.T) {
	q := testQueue(t)
	deferred(t, q, "u@example.com")
	startService(t, q, ShowqService, func(ln net.Listener) error { return ServeShowq(ln, q, nil) })
	startService(t, q, FlushService, func(ln net.Listener) error { return ServeFlush(ln, q, []string{"example.com"}, nil) })
	ask := func(service, req string) string {
		t.Helper()
		conn, err := net.Dial("unix", filepath.Join(q.Dir, queue.Public, service))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() { conn.Write([]byte(req)); conn.(*net.UnixConn).CloseWrite() }()
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return line
	}
	for _, req := range []string{
		"", "list", "bogus\n", "list extra\n", "list\r\n", "json\x00\n", strings.Repeat("l", 1<<20) + "\n",
		"\xff\xfe\x00junk\n",
	} {
		if got := ask(ShowqService, req); got != "" && got != "error bad request\n" {
			t.Errorf("showq %.20q: %q", req, got)
		}
	}
	for _, req := range []string{"site\n", "id\n", "all now\n", "site other.test\r\n", "site elsewhere.test\n", "id bad!\n", "\n"} {
		if got := ask(FlushService, req); strings.HasPrefix(got, "ok") {
			t.Errorf("flush %q: %q", req, got)
		}
	}
	if got := ask(FlushService, "site elsewhere.test\n"); got != "deny\n" {
		t.Errorf("unlisted site: %q", got)
	}
	if got := ask(ShowqService, "list\n"); got != "ok\n" {
		t.Errorf("after junk: %q", got)
	}
}

func TestMatchUser(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "users")
	os.WriteFile(list, []byte("# staff\r\nalice, bob\r\n\t!carol\n"), 0644)
	for _, c := range []struct {
		list, user string
		want       bool
	}{
		{"static:anyone", "nobody", true},
		{"", "nobody", false},
		{"root", "nobody", false},
		{"root, Nobody", "nobody", true},
		{"65534", "nobody", false}, // names only, as in Postfix
		{"!nobody, static:anyone", "nobody", false},
		{"!nobody, static:anyone", "alice", true},
		{"!!nobody", "nobody", true},
		{"inline:{nobody=yes}", "NOBODY", true},
		{"inline:{nobody=yes}", "alice", false},
		{list, "Bob", true},
		{list, "carol", false},
		{list + ", static:anyone", "carol", false}, // the file's patterns count in place
		{list + ", static:anyone", "dave", true},
		{list, "dave", false},
	} {
		got, err := MatchUser(c.list, c.user)
		if err != nil || got != c.want {
			t.Errorf("MatchUser(%q, %q) = %v, %v; want %v", c.list, c.user, got, err, c.want)
		}
	}
	for _, bad := range []string{"hash:" + filepath.Join(dir, "nonexist"), filepath.Join(dir, "missing"), dir, "bogustype:x"} {
		if _, err := MatchUser(bad, "nobody"); err == nil {
			t.Errorf("MatchUser(%q): no error", bad)
		}
	}
}

func TestQueueDirMissing(t *testing.T) {
	q := queue.New(filepath.Join(t.TempDir(), "nope"))
	var b strings.Builder
	err := PrintQueue(&b, q)
	if err == nil || err.Error() != "chdir "+q.Dir+": No such file or directory" {
		t.Errorf("got %v", err)
	}
	l := &Lister{Q: q, MailName: "Postfix"}
	if err := l.List(&b, false); err == nil || err.Error() != "chdir "+q.Dir+": No such file or directory" {
		t.Errorf("Lister: got %v", err)
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
