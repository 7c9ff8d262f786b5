package maildir

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// bigMsg is a message whose last line proves it is whole.
func bigMsg(who string, i int) string {
	return fmt.Sprintf("From: %s@example.org\nSubject: %s %d\n\n%sEND %s %d\n", who, who, i, strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n", 64), who, i)
}

// TestHelperDeliver is the deliverer process of the concurrency tests.
func TestHelperDeliver(t *testing.T) {
	dir, who, n := os.Getenv("MAILDIR_HELPER_DIR"), os.Getenv("MAILDIR_HELPER_WHO"), os.Getenv("MAILDIR_HELPER_N")
	if dir == "" {
		t.Skip("helper process only")
	}
	count, _ := strconv.Atoi(n)
	mb, err := OpenStore(dir, Options{UID: -1, GID: -1, Hostname: "vm"}).Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < count; i++ {
		if _, _, err := mb.Deliver(strings.NewReader(bigMsg(who, i)), DeliverOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func helperProcess(t *testing.T, dir, who string, n int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDeliver$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MAILDIR_HELPER_DIR="+dir, "MAILDIR_HELPER_WHO="+who, "MAILDIR_HELPER_N="+strconv.Itoa(n))
	return cmd
}

// reader syncs and reads the folder until stop closes, failing on a
// half-written message, a UID that changes or goes back, and a file that
// vanishes without an expunge.
func reader(t *testing.T, mb *Mailbox, stop <-chan struct{}) (reads int) {
	seen := map[string]uint32{}
	for {
		select {
		case <-stop:
			return reads
		default:
		}
		st, err := mb.Sync()
		if err != nil {
			t.Error(err)
			return
		}
		for i := range st.Messages {
			m := &st.Messages[i]
			if uid, ok := seen[m.Base]; ok && uid != m.UID {
				t.Errorf("%s: UID %d, then %d", m.Base, uid, m.UID)
			}
			seen[m.Base] = m.UID
			if i > 0 && st.Messages[i-1].UID >= m.UID {
				t.Errorf("UIDs out of order")
			}
		}
		// Read the newest few whole.
		for i := max(0, len(st.Messages)-4); i < len(st.Messages); i++ {
			m := &st.Messages[i]
			b, err := os.ReadFile(filepath.Join(mb.Dir, m.Path()))
			if err != nil {
				t.Errorf("read %s: %v", m.Path(), err)
				continue
			}
			reads++
			if int64(len(b)) != m.Size || !bytes.Contains(b, []byte("\nEND ")) || b[len(b)-1] != '\n' {
				t.Errorf("%s: a partial message (%d bytes)", m.Path(), len(b))
			}
		}
	}
}

// TestConcurrentDelivery: two deliverer goroutines, two deliverer
// processes and a reader at once lose nothing, never show a partial
// message and give every message one UID.
func TestConcurrentDelivery(t *testing.T) {
	s := testStore(t)
	mb := inbox(t, s)
	const n = 40
	stop := make(chan struct{})
	var reads int
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() { defer rwg.Done(); reads = reader(t, mb, stop) }()
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mb, err := s.Mailbox("INBOX")
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < n; i++ {
				if _, _, err := mb.Deliver(strings.NewReader(bigMsg("g"+strconv.Itoa(g), i)), DeliverOptions{}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	var procs []*exec.Cmd
	var outs []*bytes.Buffer
	for p := 0; p < 2; p++ {
		cmd := helperProcess(t, s.Root, "p"+strconv.Itoa(p), n)
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs, outs = append(procs, cmd), append(outs, out)
	}
	wg.Wait()
	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			t.Errorf("deliverer process: %v\n%s", err, outs[i])
		}
	}
	close(stop)
	rwg.Wait()
	checkAll(t, mb, 4*n, []string{"g0", "g1", "p0", "p1"}, n)
	if reads == 0 {
		t.Error("the reader read nothing")
	}
}

// checkAll checks that the folder holds each who's messages 0..n-1 exactly
// once, with UIDs 1..total.
func checkAll(t *testing.T, mb *Mailbox, total int, who []string, n int) {
	t.Helper()
	st, err := mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Messages) != total {
		t.Fatalf("%d messages, want %d", len(st.Messages), total)
	}
	got := map[string]bool{}
	for i := range st.Messages {
		m := &st.Messages[i]
		if m.UID != uint32(i+1) {
			t.Fatalf("message %d has UID %d", i, m.UID)
		}
		b, err := os.ReadFile(filepath.Join(mb.Dir, m.Path()))
		if err != nil {
			t.Fatal(err)
		}
		end := b[bytes.LastIndex(b, []byte("\nEND "))+5:]
		got[strings.TrimSpace(string(end))] = true
	}
	for _, w := range who {
		for i := 0; i < n; i++ {
			if !got[w+" "+strconv.Itoa(i)] {
				t.Errorf("lost %s %d", w, i)
			}
		}
	}
	u, _, err := readUidlist(mb.Dir)
	if err != nil || len(u.Records) != total || u.NextUID != uint32(total+1) {
		t.Fatalf("uidlist: %v", err)
	}
}

// TestConcurrentWithDovecot: Debian's dovecot-lda processes deliver into
// the same INBOX as our deliverers while we read; nothing is lost and
// Dovecot and we agree on every UID.
func TestConcurrentWithDovecot(t *testing.T) {
	d := newDovecot(t)
	mb, err := d.Store.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() { defer rwg.Done(); reader(t, mb, stop) }()
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if _, _, err := mb.Deliver(strings.NewReader(bigMsg("g"+strconv.Itoa(g), i)), DeliverOptions{}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := d.lda(bigMsg("d"+strconv.Itoa(p), i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	// Dovecot adds Return-Path and Delivered-To; the END line still names
	// the message.
	checkAll(t, mb, 4*n, []string{"g0", "g1", "d0", "d1"}, n)
	var want strings.Builder
	for i := 1; i <= 4*n; i++ {
		fmt.Fprintf(&want, "uid=%d\n", i)
	}
	if got := d.Doveadm("fetch", "uid", "mailbox", "INBOX", "all"); got != want.String() {
		t.Fatalf("Dovecot's UIDs:\n%s", got)
	}
	st, _ := mb.Sync()
	if got := d.Doveadm("mailbox", "status", "uidvalidity uidnext", "INBOX"); got != fmt.Sprintf("INBOX uidnext=%d uidvalidity=%d\n", 4*n+1, st.UIDValidity) {
		t.Fatalf("Dovecot's status %q", got)
	}
}
