package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/master"
)

// labDeadline bounds every wait for the mail system to do something.
const labDeadline = 20 * time.Second

// lab is one private postdove mail system laid out like lab 4a's vm2:
// myhostname vm2.example.ops, mbox spool, aliases in the config folder.
type lab struct {
	*oracle.Instance
	t   *testing.T
	bin string // postdove's bin/
	Out string // a 1777 folder for files written by pipes, /file aliases and scripts
	// Aliases is the aliases(5) source file alias_maps names.
	Aliases string
}

// labStart starts a postdove instance with the lab's main.cf plus extra,
// and an aliases table holding aliases (may be empty). When the test ends
// the master is stopped, and its process group killed if it lingers.
func labStart(t *testing.T, extra, aliases string) *lab {
	t.Helper()
	return labStartLog(t, extra, aliases, nil)
}

// labSyslog is labStart with the mail system logging to a real rsyslogd
// that owns /dev/log, as on CentOS (oracle.UnderSyslog): the test runs
// again in a child process, and labSyslog returns nil in the parent,
// which must return at once.
func labSyslog(t *testing.T, extra, aliases string) *lab {
	t.Helper()
	sys := oracle.UnderSyslog(t)
	if sys == nil {
		return nil
	}
	return labStartLog(t, extra, aliases, sys)
}

func labStartLog(t *testing.T, extra, aliases string, sys *oracle.Syslog) *lab {
	t.Helper()
	l := &lab{t: t}
	// Registered before StartPostdove so that it runs after the
	// instance's own Stop: a master restarted by the test (which the
	// instance no longer knows about) is stopped here.
	t.Cleanup(func() {
		if l.Instance != nil {
			l.shutdown()
		}
	})
	// The aliases file gets an absolute path, as /etc/aliases in the lab;
	// the instance's folder is not known before it starts.
	adir, err := os.MkdirTemp("/var/tmp", "pdtaliases-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(adir) })
	os.Chmod(adir, 0o755)
	l.Aliases = filepath.Join(adir, "aliases")
	l.Instance = oracle.StartPostdove(t, oracle.PostfixOptions{
		Hostname: "vm2.example.ops",
		MainCF: "mydomain = example.ops\n" +
			"alias_maps = hash:" + l.Aliases + "\nalias_database = hash:" + l.Aliases + "\n" + extra,
		Syslog: sys,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("maillog:\n%s", l.ReadMaillog())
		}
	})
	l.bin = filepath.Dir(oracle.Postdove(t, "postfix"))
	l.Out = filepath.Join(l.Dir, "out")
	if err := os.Mkdir(l.Out, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(l.Out, 0o777|os.ModeSticky)
	l.setAliases(aliases)
	return l
}

// shutdown runs postfix stop and kills the master's process group when it
// is still there after 10 seconds.
func (l *lab) shutdown() {
	pid := master.Running(l.QueueDir)
	if pid == 0 {
		return
	}
	oracle.Run(l.Command("postfix", "stop"), "")
	deadline := time.Now().Add(10 * time.Second)
	for master.Running(l.QueueDir) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-pid, syscall.SIGKILL)
}

// kill9 kills the master's whole process group with SIGKILL and waits
// until the master is gone.
func (l *lab) kill9() {
	l.t.Helper()
	pid := master.Running(l.QueueDir)
	if pid == 0 {
		l.t.Fatal("kill -9: no master running")
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		l.t.Fatal(err)
	}
	l.waitFor("the master to die", func() bool { return master.Running(l.QueueDir) == 0 })
}

// setAliases writes the aliases file and builds it with postalias.
func (l *lab) setAliases(text string) {
	l.t.Helper()
	if err := os.WriteFile(l.Aliases, []byte(text), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.must(l.Command("postalias", l.Aliases), "")
}

// must runs cmd with stdin and fails the test unless it exits 0.
func (l *lab) must(cmd *exec.Cmd, stdin string) oracle.Result {
	l.t.Helper()
	res := oracle.Run(cmd, stdin)
	if res.Code != 0 {
		l.t.Fatalf("%v: exit %d\n%s%s", cmd.Args, res.Code, res.Stdout, res.Stderr)
	}
	return res
}

// binCmd runs one of postdove's binaries (mailq, newaliases ...) without
// a -c flag, configured through MAIL_CONFIG only.
func (l *lab) binCmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(l.bin, name), args...)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+l.ConfigDir)
	return cmd
}

// mail runs s-nail as root, with our sendmail as its mta, like lab 4a's
// `mail` command: args are its options and recipients, stdin the body.
func (l *lab) mail(stdin string, args ...string) oracle.Result {
	l.t.Helper()
	path, err := exec.LookPath("s-nail")
	if err != nil {
		l.t.Fatal("s-nail is not installed (.ci/run installs it)")
	}
	cmd := exec.Command(path, append([]string{"-:/", "-Sv15-compat", "-Smta=" + filepath.Join(l.bin, "sendmail")}, args...)...)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+l.ConfigDir)
	return oracle.Run(cmd, stdin)
}

// sendmail submits msg with our sendmail -C config args....
func (l *lab) sendmail(msg string, args ...string) oracle.Result {
	return oracle.Run(l.Sendmail(args...), msg)
}

// user adds a system account (home under the instance) for this test.
func (l *lab) user(prefix string) oracle.User {
	return oracle.AddUser(l.t, l.HomeDir, prefix)
}

// mbox is the user's mailbox file in the spool ("" when missing).
func (l *lab) mbox(name string) string {
	b, _ := os.ReadFile(filepath.Join(l.SpoolDir, name))
	return string(b)
}

// waitFor polls cond until it holds or labDeadline passes.
func (l *lab) waitFor(what string, cond func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(labDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out after %v waiting for %s", labDeadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitMbox waits until the user's mailbox holds want and returns it.
func (l *lab) waitMbox(name, want string) string {
	l.t.Helper()
	var box string
	l.waitFor(name+"'s mailbox to hold "+want, func() bool {
		box = l.mbox(name)
		return strings.Contains(box, want)
	})
	return box
}

// waitLog waits until a maillog line matches re and returns the
// submatches of the first such line.
func (l *lab) waitLog(re string) []string {
	l.t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	l.waitFor("a maillog line matching "+re, func() bool {
		m = rx.FindStringSubmatch(l.ReadMaillog())
		return m != nil
	})
	return m
}

// queueFiles counts the files in one of the queue's folders.
func (l *lab) queueFiles(queue string) int {
	return oracle.CountFiles(filepath.Join(l.QueueDir, queue))
}

// asUser sets cmd to run as u, with u's login environment.
func asUser(cmd *exec.Cmd, u oracle.User, env ...string) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
	cmd.Env = append([]string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name,
		"PATH=/usr/bin:/bin", "LANG=C"}, env...)
	cmd.Dir = u.Home
}
