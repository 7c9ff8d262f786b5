package compat

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/queue"
)

// postqueueMsg is one message put into both queues under the same ID.
type postqueueMsg struct {
	queue, id, sender string
	arrival           int64
	rcpts             []string // "!addr" is a recipient already delivered
	reasons           map[string]string
	body              string
}

// postqueueSetup makes a config directory and queue directory for one
// side of the comparison.
func postqueueSetup(t *testing.T, o *oracle.Oracle) (conf, spool string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		t.Skip("no postfix user")
	}
	base := t.TempDir()
	os.Chmod(base, 0755)
	conf, spool = filepath.Join(base, "etc"), filepath.Join(base, "spool")
	os.Mkdir(conf, 0755)
	if err := queue.Setup(spool, "postfix", "postdrop"); err != nil {
		t.Fatal(err)
	}
	cf := "compatibility_level = 3.6\nqueue_directory = " + spool + "\n"
	if o != nil {
		lib := o.LibDir()
		cf += o.DynamicMapsConfig() + "daemon_directory = " + filepath.Join(o.Root, "usr/lib/postfix/sbin") + "\n" +
			"import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH=" + lib + "\n"
	}
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), []byte(cf), 0644); err != nil {
		t.Fatal(err)
	}
	return conf, spool
}

// postqueueRecord is one Postfix queue file record: type, length as
// base-128 little-endian digits, data.
func postqueueRecord(typ byte, data string) []byte {
	out := []byte{typ}
	n := len(data)
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			out = append(out, b)
			break
		}
		out = append(out, b|0x80)
	}
	return append(out, data...)
}

// postqueueWritePostfix writes m as a Postfix queue file (and defer
// logfile) for the oracle's showq.
func postqueueWritePostfix(t *testing.T, spool string, m postqueueMsg) {
	t.Helper()
	var content []byte
	for _, l := range strings.SplitAfter(m.body, "\n") {
		if l == "" {
			continue
		}
		// cleanup stores a line longer than line_length_limit (2048)
		// as continuation records followed by the rest.
		l = strings.TrimSuffix(l, "\n")
		for len(l) > 2048 {
			content = append(content, postqueueRecord('L', l[:2048])...)
			l = l[2048:]
		}
		content = append(content, postqueueRecord('N', l)...)
	}
	head := append(postqueueRecord('T', fmt.Sprintf("%d 0", m.arrival)), postqueueRecord('S', m.sender)...)
	for _, r := range m.rcpts {
		if strings.HasPrefix(r, "!") {
			head = append(head, postqueueRecord('D', r[1:])...)
		} else {
			head = append(head, postqueueRecord('R', r)...)
		}
	}
	head = append(head, postqueueRecord('M', "")...)
	sizeRec := func(size, off int) []byte {
		return postqueueRecord('C', fmt.Sprintf("%15d %15d %15d %15d %15d %15d", size, off, len(m.rcpts), 0, len(m.body), 0))
	}
	off := len(sizeRec(0, 0)) + len(head)
	// showq reports the size record's first field: what cleanup writes
	// there, the length of the content records.
	file := append(append(sizeRec(len(content), off), head...), content...)
	file = append(append(file, postqueueRecord('X', "")...), postqueueRecord('E', "")...)
	q := queue.New(spool)
	pfx, _ := user.Lookup("postfix")
	uid, _ := strconv.Atoi(pfx.Uid)
	write := func(p string, data []byte, mode os.FileMode) {
		os.MkdirAll(filepath.Dir(p), 0700)
		os.Chown(filepath.Dir(p), uid, 0)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		os.Chown(p, uid, 0)
	}
	write(q.Path(m.queue, m.id), file, 0700)
	if m.reasons != nil {
		var log strings.Builder
		for _, r := range m.rcpts {
			if why, ok := m.reasons[r]; ok {
				fmt.Fprintf(&log, "recipient=%s\nreason=%s\n\n", r, why)
			}
		}
		write(q.Path(queue.Defer, m.id), []byte(log.String()), 0600)
	}
}

// postqueueWriteOurs writes m in postdove's format under the same ID.
func postqueueWriteOurs(t *testing.T, spool string, m postqueueMsg) {
	t.Helper()
	q := queue.New(spool)
	msg := &queue.Message{Arrival: time.Unix(m.arrival, 0), Sender: m.sender}
	for _, r := range m.rcpts {
		rc := queue.Recipient{Address: strings.TrimPrefix(r, "!")}
		if strings.HasPrefix(r, "!") {
			rc.Status = queue.Delivered
		}
		msg.Recipients = append(msg.Recipients, rc)
	}
	id, err := q.Enqueue(m.queue, msg, strings.NewReader(m.body))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(q.Path(m.queue, id), q.Path(m.queue, m.id)); err != nil {
		os.MkdirAll(filepath.Dir(q.Path(m.queue, m.id)), 0700)
		if err := os.Rename(q.Path(m.queue, id), q.Path(m.queue, m.id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range m.rcpts {
		if why, ok := m.reasons[r]; ok {
			if err := q.AppendLog(queue.Defer, m.id, queue.LogEntry{Recipient: r, Reason: why}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// postqueueCompare runs the oracle's and our command on the same queue
// contents and compares stdout, stderr shape and exit code.
func postqueueCompare(t *testing.T, msgs []postqueueMsg, cmd string, args ...string) {
	t.Helper()
	o := oracle.Get(t)
	oconf, ospool := postqueueSetup(t, o)
	pconf, pspool := postqueueSetup(t, nil)
	for _, m := range msgs {
		postqueueWritePostfix(t, ospool, m)
		postqueueWriteOurs(t, pspool, m)
	}
	want := oracle.Run(o.Command(cmd, append([]string{"-c", oconf}, args...)...), "")
	bin := oracle.Postdove(t, cmd)
	got := oracle.Run(exec.Command(bin, append([]string{"-c", pconf}, args...)...), "")
	// Neither has a master running: both warn, then read the queue.
	wantErr := oracle.StderrShape(want.Stderr)
	if got.Stdout != want.Stdout {
		t.Errorf("%s %v stdout:\n--- postfix\n%s--- postdove\n%s", cmd, args, want.Stdout, got.Stdout)
	}
	if g := oracle.StderrShape(got.Stderr); strings.Join(g, "\n") != strings.Join(wantErr, "\n") {
		t.Errorf("%s %v stderr:\n--- postfix\n%q\n--- postdove\n%q", cmd, args, wantErr, g)
	}
	if got.Code != want.Code {
		t.Errorf("%s %v exit %d, postfix %d", cmd, args, got.Code, want.Code)
	}
}

var postqueueSample = []postqueueMsg{
	{queue: queue.Active, id: "B1B2C3D4E5", sender: "act@example.com", arrival: 1793574000, rcpts: []string{"r@example.net"}, body: "Subject: a\n\nshort\n"},
	{queue: queue.Incoming, id: "7DCF99845", sender: "inc@example.com", arrival: 1793574000, rcpts: []string{"r@example.net"}, body: strings.Repeat("x", 3000) + "\n"},
	{queue: queue.Deferred, id: "A1B2C3D4E5", sender: "", arrival: 1795299959,
		rcpts: []string{"x@a.example", "y@b.example", "!z@c.example", "w@d.example", "v@e.example", "u@f.example"},
		reasons: map[string]string{
			"x@a.example": "short one",
			"y@b.example": strings.Repeat("x", 56),
			"w@d.example": "connect to mail.example.com[192.0.2.1]:25: Connection timed out while talking to a host",
			"v@e.example": "short one",
		},
		body: "Subject: d\n\nbody \"quoted\"\n"},
	{queue: queue.Hold, id: "4jX6Hf339jz1SCmy", sender: "held \"q\"@example.com", arrival: 1793574000, rcpts: []string{"r@x.example"}, body: "x\n"},
}

func TestPostqueueListing(t *testing.T) {
	postqueueCompare(t, postqueueSample, "postqueue", "-p")
}

func TestPostqueueJSON(t *testing.T) {
	postqueueCompare(t, postqueueSample, "postqueue", "-j")
}

func TestPostqueueEmpty(t *testing.T) {
	postqueueCompare(t, nil, "postqueue", "-p")
	postqueueCompare(t, nil, "postqueue", "-j")
}

func TestPostqueueUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-x"}, {"-p", "extra"}, {"-p", "-j"}, {"-i", "bogus!"}, {"-s", "example.com"}, {"-f"}} {
		postqueueCompareErr(t, "postqueue", args...)
	}
}

func TestPostsuperOperations(t *testing.T) {
	for _, args := range [][]string{
		{"-d", "A1B2C3D4E5"}, {"-d", "ALL"}, {"-d", "ALL", "deferred"}, {"-d", "nonexist"}, {"-d", "bogus!"},
		{"-h", "ALL"}, {"-h", "A1B2C3D4E5"}, {"-H", "ALL"}, {"-H", "4jX6Hf339jz1SCmy"}, {"-r", "ALL"},
		{"-d", "ALL", "-h", "ALL", "-H", "ALL", "-r", "ALL"}, {"-d", "ALL", "corrupt"}, {"-x"},
	} {
		postqueueCompare(t, postqueueSample, "postsuper", args...)
	}
}

// postqueueCompareErr compares a run that fails before the queue is read.
func postqueueCompareErr(t *testing.T, cmd string, args ...string) {
	t.Helper()
	postqueueCompare(t, nil, cmd, args...)
}
