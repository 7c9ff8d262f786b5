package postsuper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/pkg/maillog"
	"postdove/pkg/queue"
)

func testQueue(t *testing.T) (*queue.Queue, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range append(append([]string{}, queue.MessageQueues...), queue.Corrupt, queue.Defer, queue.Bounce, queue.Trace) {
		os.Mkdir(filepath.Join(dir, d), 0700)
	}
	q := queue.New(dir)
	ids := map[string]string{}
	for _, name := range []string{queue.Deferred, queue.Hold, queue.Active} {
		id, err := q.Enqueue(name, &queue.Message{Sender: "a@b", Recipients: []queue.Recipient{{Address: "x@y"}}}, strings.NewReader("hi\n"))
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	return q, ids
}

func runReq(t *testing.T, q *queue.Queue, r *Request) string {
	t.Helper()
	var out strings.Builder
	if err := Run(q, r, WriterLogger(&out)); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestHoldReleaseRequeueDelete(t *testing.T) {
	q, ids := testQueue(t)
	r := &Request{}
	r.Add(Hold, ids[queue.Deferred])
	if got := runReq(t, q, r); got != "postsuper: "+ids[queue.Deferred]+": placed on hold\npostsuper: Placed on hold: 1 message\n" {
		t.Errorf("hold: %q", got)
	}
	if name, _ := q.Find(ids[queue.Deferred]); name != queue.Hold {
		t.Errorf("after -h in %s", name)
	}
	r = &Request{}
	r.Add(Release, "ALL")
	if got := runReq(t, q, r); got != "postsuper: Released from hold: 2 messages\n" {
		t.Errorf("release: %q", got)
	}
	q.AppendLog(queue.Defer, ids[queue.Active], queue.LogEntry{Recipient: "x@y", Reason: "later"})
	r = &Request{Queues: []string{queue.Active}}
	r.Add(Requeue, "ALL")
	if got := runReq(t, q, r); got != "postsuper: Requeued: 1 message\n" {
		t.Errorf("requeue: %q", got)
	}
	if name, _ := q.Find(ids[queue.Active]); name != queue.Maildrop {
		t.Errorf("after -r in %s", name)
	}
	if log, _ := q.ReadLog(queue.Defer, ids[queue.Active]); len(log) != 0 {
		t.Errorf("requeue kept the defer log")
	}
	r = &Request{Stdin: strings.NewReader(ids[queue.Hold] + "\nbad!\n\n" + ids[queue.Active] + "\n")}
	r.Add(Delete, "-")
	got := runReq(t, q, r)
	want := "postsuper: " + ids[queue.Hold] + ": removed\npostsuper: warning: invalid mail queue id: bad!\npostsuper: warning: invalid mail queue id: \npostsuper: " + ids[queue.Active] + ": removed\npostsuper: Deleted: 2 messages\n"
	if got != want {
		t.Errorf("delete -:\n%s\nwant\n%s", got, want)
	}
	r = &Request{Queues: []string{"corrupt"}}
	r.Add(Delete, "ALL")
	if err := Run(q, r, WriterLogger(&strings.Builder{})); err == nil || err.Error() != "invalid directory name: corrupt" {
		t.Errorf("corrupt queue arg: %v", err)
	}
}

func TestExpireAndStructure(t *testing.T) {
	q, ids := testQueue(t)
	r := &Request{}
	r.Add(ExpireRelease, ids[queue.Hold])
	r.Add(Expire, ids[queue.Deferred])
	if got := runReq(t, q, r); !strings.HasSuffix(got, "postsuper: Force-expired: 2 messages\n") {
		t.Errorf("expire: %q", got)
	}
	m, err := q.ReadEnvelope(queue.Deferred, ids[queue.Hold])
	if err != nil || !m.ForcedExpire {
		t.Errorf("-f: %+v %v", m, err)
	}
	// A corrupt file and a stale temporary file.
	bad := filepath.Join(q.Dir, queue.Incoming, "ABCDEF12345")
	os.WriteFile(bad, []byte("junk\x00\xff"), 0600)
	tmp := filepath.Join(q.Dir, queue.Incoming, "tmp.1.2")
	os.WriteFile(tmp, []byte("half"), 0600)
	os.Chtimes(tmp, oldTime(), oldTime())
	// Files left at the wrong hash depth are moved where they belong.
	q.HashDepth = 2
	got := runReq(t, q, &Request{Check: true, Purge: true})
	if got != "postsuper: warning: incoming/ABCDEF12345: moved to corrupt queue\n" {
		t.Errorf("-s: %q", got)
	}
	if _, err := os.Stat(q.Path(queue.Deferred, ids[queue.Deferred])); err != nil {
		t.Errorf("not rehashed: %v", err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("-p kept %s", tmp)
	}
	if name, _ := q.Find("ABCDEF12345"); name != queue.Corrupt {
		t.Errorf("corrupt file in %q", name)
	}
}

func oldTime() time.Time { return time.Now().Add(-2 * tempAge) }

// TestMessagesGoToMaillogAndStderr runs postsuper with the maillog
// logger the command uses: each message reaches both the terminal and
// the maillog, as "postfix/postsuper[pid]: Placed on hold: 1 message".
func TestMessagesGoToMaillogAndStderr(t *testing.T) {
	q, ids := testQueue(t)
	file := filepath.Join(t.TempDir(), "maillog")
	var stderr strings.Builder
	log, err := maillog.New(maillog.Options{SyslogName: "postfix", Program: "postsuper", File: file, Hostname: "mail.example.test", PID: 42, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	r := &Request{}
	r.Add(Hold, ids[queue.Deferred])
	r.Add(Hold, "bad!")
	if err := Run(q, r, log); err != nil {
		t.Fatal(err)
	}
	want := "postsuper: " + ids[queue.Deferred] + ": placed on hold\npostsuper: warning: invalid mail queue id: bad!\npostsuper: Placed on hold: 1 message\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant\n%s", stderr.String(), want)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		" mail postfix/postsuper[42]: " + ids[queue.Deferred] + ": placed on hold\n",
		" mail postfix/postsuper[42]: warning: invalid mail queue id: bad!\n",
		" mail postfix/postsuper[42]: Placed on hold: 1 message\n",
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("maillog lacks %q:\n%s", line, b)
		}
	}
}
