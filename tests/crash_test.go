package tests

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/master"
)

// crashBurst is how many messages a crash test submits.
const crashBurst = 1000

// TestCrashKill9 kills the master's whole process group in the middle of
// a burst; TestCrashStop stops the system the polite way. Either way,
// after postfix start every message sendmail accepted is delivered.
func TestCrashKill9(t *testing.T) { crashBurstTest(t, true) }
func TestCrashStop(t *testing.T)  { crashBurstTest(t, false) }

func crashBurstTest(t *testing.T, kill bool) {
	l := labStart(t, "home_mailbox = Maildir/\n", "")
	u := l.user("pdtcrash")
	newDir := u.Maildir()

	var accepted [crashBurst]bool
	var submitted atomic.Int32
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				msg := fmt.Sprintf("Subject: crash %d\nMessage-Id: <crash.%d@vm2.example.ops>\n\nmessage %d\n", i, i, i)
				if res := l.sendmail(msg, u.Name); res.Code == 0 {
					accepted[i] = true
				} else {
					t.Logf("message %d: sendmail exit %d: %s", i, res.Code, res.Stderr)
				}
				submitted.Add(1)
			}
		}()
	}
	feed := make(chan struct{})
	go func() {
		defer close(feed)
		for i := 0; i < crashBurst; i++ {
			next <- i
		}
		close(next)
	}()

	// Stop the system once deliveries are well under way.
	deadline := time.Now().Add(30 * time.Second)
	for oracle.CountFiles(newDir) < crashBurst/4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	before := oracle.CountFiles(newDir)
	if kill {
		l.kill9()
	} else {
		l.must(l.Command("postfix", "stop"), "")
		l.waitFor("the master to stop", func() bool { return master.Running(l.QueueDir) == 0 })
	}
	t.Logf("stopped after %d deliveries, %d submissions", before, submitted.Load())
	<-feed
	wg.Wait()
	if res := oracle.Run(l.Command("postfix", "start"), ""); res.Code != 0 {
		t.Fatalf("postfix start after the crash: exit %d\n%s", res.Code, res.Stderr)
	}

	n := 0
	for _, ok := range accepted {
		if ok {
			n++
		}
	}
	if n < crashBurst*9/10 {
		t.Errorf("only %d of %d submissions accepted", n, crashBurst)
	}
	got := 0
	end := time.Now().Add(40 * time.Second)
	for time.Now().Before(end) {
		if got = oracle.CountFiles(newDir); got >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	seen, files := crashSubjects(t, newDir)
	dups := files - len(seen)
	for i, ok := range accepted {
		if ok && seen[i] == 0 {
			t.Errorf("message %d was accepted (sendmail exit 0) but never delivered", i)
		}
	}
	t.Logf("%d accepted, %d files in Maildir/new, %d distinct, %d duplicates", n, files, len(seen), dups)
	if dups > 8 {
		t.Errorf("%d duplicate deliveries: more than the deliveries that can be under way at once", dups)
	}
	if _, err := os.Stat(filepath.Join(u.Home, "Maildir", "tmp")); err == nil {
		if left := oracle.CountFiles(filepath.Join(u.Home, "Maildir", "tmp")); left > 8 {
			t.Errorf("%d files left in Maildir/tmp", left)
		}
	}
}

var crashSubject = regexp.MustCompile(`^Subject: crash (\d+)$`)

// crashSubjects reads every message in dir and counts them by the number
// in their Subject.
func crashSubjects(t *testing.T, dir string) (map[int]int, int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("Maildir: %v", err)
	}
	seen := map[int]int{}
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() && sc.Text() != "" {
			if m := crashSubject.FindStringSubmatch(sc.Text()); m != nil {
				i, _ := strconv.Atoi(m[1])
				seen[i]++
			}
		}
		f.Close()
	}
	return seen, len(ents)
}
