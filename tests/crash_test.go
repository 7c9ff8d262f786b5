package tests

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/master"
)

// crashBurst is how many messages a crash test submits.
const crashBurst = 1000

// How a crash test stops the mail system.
type crashHow int

const (
	crashStop   crashHow = iota // postfix stop
	crashGroup                  // kill -9 of the master's process group
	crashMaster                 // kill -9 of the master alone
)

// TestCrashKill9 kills the master's whole process group in the middle of
// a burst; TestCrashStop stops the system the polite way;
// TestCrashKillMaster kills the master alone and starts the system again
// at once, while its daemons still finish their work: the daemons must
// notice and exit, and the new master must wait for them, so that one set
// of daemons runs on the queue and nothing is delivered twice. Either way,
// after postfix start every message sendmail accepted is delivered.
func TestCrashKill9(t *testing.T)      { crashBurstTest(t, crashGroup) }
func TestCrashStop(t *testing.T)       { crashBurstTest(t, crashStop) }
func TestCrashKillMaster(t *testing.T) { crashBurstTest(t, crashMaster) }

func crashBurstTest(t *testing.T, how crashHow) {
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
	start := func() {
		t.Helper()
		if res := oracle.RunLimit(l.Command("postfix", "start"), "", oracle.StartLimit); res.Code != 0 {
			t.Fatalf("postfix start after the crash: exit %d\n%s", res.Code, res.Stderr)
		}
	}
	switch how {
	case crashGroup:
		l.kill9()
	case crashMaster:
		old := l.daemons()
		pid := master.Running(l.QueueDir)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		l.waitFor("the master to die", func() bool { return master.Running(l.QueueDir) == 0 })
		t.Logf("killed master %d; its daemons: %v", pid, old)
		began := time.Now()
		start()
		t.Logf("postfix start took %v", time.Since(began).Round(time.Millisecond))
		for role, pids := range old {
			for _, p := range pids {
				if running(p) {
					t.Errorf("%s (pid %d) of the killed master still runs after postfix start", role, p)
				}
			}
		}
	default:
		l.must(l.Command("postfix", "stop"), "")
		l.waitFor("the master to stop", func() bool { return master.Running(l.QueueDir) == 0 })
	}
	t.Logf("stopped after %d deliveries, %d submissions", before, submitted.Load())
	<-feed
	wg.Wait()
	if how != crashMaster {
		start()
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
	// Wait until every accepted message is there: duplicates are files
	// too, so the count of files alone can reach n early.
	allSeen := func(seen map[int]int) bool {
		for i, ok := range accepted {
			if ok && seen[i] == 0 {
				return false
			}
		}
		return true
	}
	seen, files := crashSubjects(t, newDir)
	for end := time.Now().Add(40 * time.Second); !allSeen(seen) && time.Now().Before(end); {
		time.Sleep(200 * time.Millisecond)
		seen, files = crashSubjects(t, newDir)
	}
	dups := files - len(seen)
	for i, ok := range accepted {
		if ok && seen[i] == 0 {
			t.Errorf("message %d was accepted (sendmail exit 0) but never delivered", i)
		}
	}
	lost := 0
	for i, ok := range accepted {
		if ok && seen[i] == 0 {
			lost++
		}
	}
	t.Logf("%d accepted, %d files in Maildir/new, %d distinct, %d lost, %d duplicates", n, files, len(seen), lost, dups)
	if how == crashMaster {
		// One set of daemons, the new master's.
		pid := master.Running(l.QueueDir)
		ds := l.daemons()
		for _, role := range []string{"pickup", "qmgr", "local", "showq"} {
			// showq starts when a client connects, as in Postfix.
			if len(ds[role]) > 1 || len(ds[role]) == 0 && role != "showq" || len(ds[role]) == 1 && ppid(ds[role][0]) != pid {
				t.Errorf("%s: processes %v, want one, child of master %d", role, ds[role], pid)
			}
		}
		if dups != 0 {
			t.Errorf("%d duplicate deliveries after the master alone was killed", dups)
		}
		// Deliveries qmgr was handing over as the master died were
		// taken by local, not deferred.
		if m := regexp.MustCompile(`.*status=deferred.*`).FindAllString(l.ReadMaillog(), 5); m != nil {
			t.Errorf("deferrals after the master was killed:\n%s", strings.Join(m, "\n"))
		}
	}
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

// daemons are the processes of this mail system's daemons, by role:
// those with the instance's MAIL_CONFIG and a role in their environment.
func (l *lab) daemons() map[string][]int {
	ents, _ := os.ReadDir("/proc")
	found := map[string][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		var role, config string
		for _, kv := range strings.Split(string(b), "\x00") {
			if v, ok := strings.CutPrefix(kv, "POSTDOVE_ROLE="); ok {
				role = v
			}
			if v, ok := strings.CutPrefix(kv, "MAIL_CONFIG="); ok {
				config = v
			}
		}
		if role != "" && role != "master" && config == l.ConfigDir && running(pid) {
			found[role] = append(found[role], pid)
		}
	}
	return found
}

// procStat is field n (1-based, after the command) of /proc/pid/stat.
func procStat(pid, n int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if n-1 < len(f) {
		return f[n-1]
	}
	return ""
}

// running tells whether pid runs: a zombie, even one whose threads are
// still on their way out, does no more work.
func running(pid int) bool {
	st := procStat(pid, 1)
	return st != "" && st != "Z" && st != "X"
}

// ppid is pid's parent.
func ppid(pid int) int {
	p, _ := strconv.Atoi(procStat(pid, 2))
	return p
}

// TestMasterDeathStopsDaemons kills the master alone, as a crash would:
// its daemons and local's delivery workers exit by themselves, postfix
// status says the system is down, and postfix stop has nothing to stop.
func TestMasterDeathStopsDaemons(t *testing.T) {
	l := labStart(t, "", "")
	alice := l.user("pdtalice")
	if res := l.sendmail("Subject: before\n\nbefore the crash\n", alice.Name); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(alice.Name, "before the crash")
	if len(l.userProcs(alice.UID)) == 0 {
		t.Log("no delivery worker left running as the recipient (it may have idled out)")
	}
	pid := master.Running(l.QueueDir)
	old := l.daemons()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.waitFor("the daemons of the killed master to exit", func() bool { return len(l.daemons()) == 0 })
	l.waitFor("local's delivery workers to exit", func() bool { return len(l.userProcs(alice.UID)) == 0 })
	t.Logf("daemons %v of master %d exited with it", old, pid)
	res := oracle.Run(l.Command("postfix", "status"), "")
	if res.Code != 1 || res.Stderr != "postfix/postfix-script: the Postfix mail system is not running\n" {
		t.Errorf("status: exit %d %q", res.Code, res.Stderr)
	}
	res = oracle.Run(l.Command("postfix", "stop"), "")
	if res.Code != 1 || !strings.Contains(res.Stderr, "the Postfix mail system is not running") {
		t.Errorf("stop: exit %d %q", res.Code, res.Stderr)
	}
	l.must(l.Command("postfix", "start"), "")
	if res := l.sendmail("Subject: after\n\nafter the crash\n", alice.Name); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(alice.Name, "after the crash")
}

// userProcs are the processes running with uid (local's workers for a
// test's own user).
func (l *lab) userProcs(uid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st) == nil && int(st.Uid) == uid && running(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
