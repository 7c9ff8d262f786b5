package oracle

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostfixOptions configures a private mail system started by StartPostfix
// or StartPostdove. Both get the same main.cf settings that matter to a
// user (myhostname, mail_owner, the queue, maillog_file, the spool).
type PostfixOptions struct {
	// MainCF is appended to the helper's main.cf; a later line wins, so it
	// can override anything (home_mailbox = Maildir/, mail_spool_directory,
	// alias_maps ...).
	MainCF string
	// MasterCF is appended to the helper's master.cf.
	MasterCF string
	// Hostname is myhostname; default "mail.example.test".
	Hostname string
	// Aliases is ConfigDir/aliases, indexed with the system's own
	// postalias before start; alias_maps = hash:$config_directory/aliases.
	// Default "postmaster: root" and "root: /dev/null", so that bounces
	// never reach the real root's mailbox.
	Aliases string
	// Syslog, when set, is the rsyslogd the system logs to (UnderSyslog):
	// main.cf sets no maillog_file, and Maillog is rsyslogd's file. One
	// instance per Syslog: they would share the file.
	Syslog *Syslog
	// Files are written into ConfigDir before start (name -> contents),
	// and Postmap names tables ("hash:access", relative to ConfigDir)
	// that the system's own postmap indexes before start.
	Files   map[string]string
	Postmap []string
}

// Instance is one running private mail system, the real Postfix or
// postdove, with its own configuration, queue and maillog file. Nothing in
// it listens on the network: master.cf has no inet services.
type Instance struct {
	System    string // "postfix" or "postdove"
	Dir       string // the instance's root, root-owned 0755 under /var/tmp
	ConfigDir string // config_directory: main.cf and master.cf
	QueueDir  string // queue_directory
	Maillog   string // maillog_file, or rsyslogd's file (PostfixOptions.Syslog)
	SpoolDir  string // mail_spool_directory (1777), unless MainCF overrides it
	HomeDir   string // where AddUser puts home directories

	t       testing.TB
	command func(name string, args ...string) *exec.Cmd
	stopped bool
}

// instanceMasterCF is the master.cf both systems get: Postfix 3.7's stock
// services minus every inet listener (port 25 is never bound), plus the
// postlog service that maillog_file needs.
const instanceMasterCF = `# service type  private unpriv  chroot  wakeup  maxproc command
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// StartLimit is how long postfix start may take: it returns once the mail
// system runs.
const StartLimit = 30 * time.Second

// StartPostfix starts Debian's real Postfix 3.7 from the oracle in a
// private instance and registers its Stop with t.Cleanup. It skips (or,
// under CI, fails) when the oracle is unavailable, and skips when not root.
func StartPostfix(t testing.TB, opt PostfixOptions) *Instance {
	t.Helper()
	o := Get(t)
	inst := newInstance(t, "postfix")
	libs := o.LibDir()
	sbin := filepath.Join(o.Root, "usr/sbin")
	share := filepath.Join(o.Root, "usr/share")
	extra := strings.Join([]string{
		"daemon_directory = " + filepath.Join(libs, "sbin"),
		"command_directory = " + sbin,
		"shlib_directory = " + libs,
		"meta_directory = " + o.MetaDir(),
		"sendmail_path = " + filepath.Join(sbin, "sendmail"),
		"newaliases_path = " + filepath.Join(o.Root, "usr/bin/newaliases"),
		"mailq_path = " + filepath.Join(o.Root, "usr/bin/mailq"),
		"manpage_directory = " + filepath.Join(share, "man"),
		"sample_directory = " + filepath.Join(share, "doc/postfix/examples"),
		"readme_directory = " + filepath.Join(share, "doc/postfix"),
		"html_directory = " + filepath.Join(share, "doc/postfix/html"),
		// The oracle's programs find their libraries only through
		// LD_LIBRARY_PATH: keep it for the daemons (import) and for the
		// commands they and sendmail run (export: postdrop, pipe ...).
		"import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH",
		"export_environment = TZ MAIL_CONFIG LANG LD_LIBRARY_PATH",
	}, "\n") + "\n"
	inst.command = func(name string, args ...string) *exec.Cmd {
		cmd := o.Command(name, args...)
		cmd.Env = append(cmd.Env, "MAIL_CONFIG="+inst.ConfigDir)
		return cmd
	}
	inst.start(extra, opt)
	return inst
}

// StartPostdove starts postdove's mail system (bin/postfix start, built
// with make) in a private instance configured like StartPostfix's, and
// registers its Stop with t.Cleanup.
func StartPostdove(t testing.TB, opt PostfixOptions) *Instance {
	t.Helper()
	bin := filepath.Dir(Postdove(t, "postfix"))
	inst := newInstance(t, "postdove")
	extra := "command_directory = " + bin + "\ndaemon_directory = " + bin + "\n" +
		"sendmail_path = " + filepath.Join(bin, "sendmail") + "\n"
	inst.command = func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = append(os.Environ(), "MAIL_CONFIG="+inst.ConfigDir)
		return cmd
	}
	inst.start(extra, opt)
	return inst
}

// newInstance makes the instance's folders. Postfix wants every parent of
// the queue root-owned and not group or world writable, and maillog_file
// under /var, so it lives in a fresh 0755 folder under /var/tmp rather
// than in t.TempDir.
func newInstance(t testing.TB, system string) *Instance {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a private Postfix instance needs root")
	}
	dir, err := os.MkdirTemp("/var/tmp", system+"-instance-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	inst := &Instance{
		System:    system,
		Dir:       dir,
		ConfigDir: filepath.Join(dir, "etc"),
		QueueDir:  filepath.Join(dir, "queue"),
		Maillog:   filepath.Join(dir, "maillog"),
		SpoolDir:  filepath.Join(dir, "spool"),
		HomeDir:   filepath.Join(dir, "home"),
		t:         t,
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0755}, {inst.ConfigDir, 0755}, {inst.QueueDir, 0755}, {inst.HomeDir, 0755}, {inst.SpoolDir, 01777}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		// MkdirAll obeys the umask and drops the sticky bit.
		if err := os.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	return inst
}

// start writes main.cf (the shared settings, the system's own, then the
// test's) and master.cf, runs "postfix start" and registers Stop.
func (inst *Instance) start(systemCF string, opt PostfixOptions) {
	t := inst.t
	t.Helper()
	host := opt.Hostname
	if host == "" {
		host = "mail.example.test"
	}
	aliases := filepath.Join(inst.ConfigDir, "aliases")
	logTo := "maillog_file = " + inst.Maillog
	if opt.Syslog != nil {
		logTo = "# logging to syslog: /dev/log"
		inst.Maillog = opt.Syslog.File
	}
	mainCF := strings.Join([]string{
		"# written by postdove/compat/oracle for a private " + inst.System + " instance",
		"compatibility_level = 3.6",
		"queue_directory = " + inst.QueueDir,
		// postfix start creates it, owned by mail_owner.
		"data_directory = " + filepath.Join(inst.Dir, "data"),
		"mail_owner = postfix",
		"setgid_group = postdrop",
		logTo,
		"myhostname = " + host,
		"inet_interfaces = loopback-only",
		"mydestination = $myhostname, localhost.$mydomain, localhost",
		"mail_spool_directory = " + inst.SpoolDir,
		"alias_maps = hash:" + aliases,
		"alias_database = hash:" + aliases,
	}, "\n") + "\n" + systemCF + opt.MainCF
	if opt.Aliases == "" {
		opt.Aliases = "postmaster: root\nroot: /dev/null\n"
	}
	if err := os.WriteFile(aliases, []byte(opt.Aliases), 0644); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(mainCF, "\n") {
		mainCF += "\n"
	}
	if err := os.WriteFile(filepath.Join(inst.ConfigDir, "main.cf"), []byte(mainCF), 0644); err != nil {
		t.Fatal(err)
	}
	masterCF := instanceMasterCF + opt.MasterCF
	if err := os.WriteFile(filepath.Join(inst.ConfigDir, "master.cf"), []byte(masterCF), 0644); err != nil {
		t.Fatal(err)
	}
	if res := Run(inst.Command("postalias", aliases), ""); res.Code != 0 {
		t.Fatalf("%s postalias %s: exit %d: %s", inst.System, aliases, res.Code, res.Stderr)
	}
	for name, text := range opt.Files {
		if err := os.WriteFile(filepath.Join(inst.ConfigDir, name), []byte(text), 0644); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range opt.Postmap {
		kind, name, _ := strings.Cut(table, ":")
		if res := Run(inst.Command("postmap", kind+":"+filepath.Join(inst.ConfigDir, name)), ""); res.Code != 0 {
			t.Fatalf("%s postmap %s: exit %d: %s", inst.System, table, res.Code, res.Stderr)
		}
	}
	t.Cleanup(inst.Stop)
	res := RunLimit(inst.Command("postfix", "start"), "", StartLimit)
	if res.Code != 0 {
		t.Fatalf("%s start: exit %d\n%s%s\nmaillog:\n%s", inst.System, res.Code, res.Stdout, res.Stderr, inst.ReadMaillog())
	}
}

// Command returns one of the system's programs with this instance's
// configuration: "-c DIR" first for the Postfix commands that take it,
// "-C DIR" for sendmail, mailq and newaliases, and MAIL_CONFIG=DIR in the
// environment either way.
func (inst *Instance) Command(name string, args ...string) *exec.Cmd {
	flag := "-c"
	switch name {
	case "sendmail", "mailq", "newaliases":
		flag = "-C"
	}
	return inst.command(name, append([]string{flag, inst.ConfigDir}, args...)...)
}

// Sendmail returns the system's sendmail with -C ConfigDir and args.
func (inst *Instance) Sendmail(args ...string) *exec.Cmd {
	return inst.Command("sendmail", args...)
}

// ReadMaillog returns the maillog file's contents so far ("" when none).
func (inst *Instance) ReadMaillog() string {
	b, _ := os.ReadFile(inst.Maillog)
	return string(b)
}

// MasterPID returns the pid in queue_directory/pid/master.pid, or 0.
func (inst *Instance) MasterPID() int {
	b, err := os.ReadFile(filepath.Join(inst.QueueDir, "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// alive tells whether pid runs (a zombie waiting for init counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// Stop runs "postfix stop" and waits up to 30 seconds for the master to
// exit, then "postfix abort" and a SIGKILL to the master's process group.
// It runs at most once; StartPostfix and StartPostdove register it with
// t.Cleanup.
func (inst *Instance) Stop() {
	if inst.stopped {
		return
	}
	inst.stopped = true
	pid := inst.MasterPID()
	res := Run(inst.Command("postfix", "stop"), "")
	if pid == 0 {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		inst.t.Logf("%s stop (exit %d: %s): master %d still running, aborting", inst.System, res.Code, strings.TrimSpace(res.Stderr), pid)
		Run(inst.Command("postfix", "abort"), "")
		syscall.Kill(-pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// User is a system account made for a test, removed when it ends.
type User struct {
	Name string
	Home string
	UID  int
	GID  int
}

// Maildir returns the user's ~/Maildir/new (where home_mailbox = Maildir/
// delivers).
func (u User) Maildir() string { return filepath.Join(u.Home, "Maildir", "new") }

// AddUser creates a system user with a unique name starting with prefix
// (at most 8 characters of it are used) and a home directory, owned by
// the user, in parent; userdel removes it when the test ends.
func AddUser(t testing.TB, parent, prefix string) User {
	t.Helper()
	if len(prefix) > 8 {
		prefix = prefix[:8]
	}
	rnd := make([]byte, 4)
	rand.Read(rnd)
	name := prefix + hex.EncodeToString(rnd)
	home := filepath.Join(parent, name)
	// useradd fails while another test holds the passwd lock: retry.
	var out []byte
	var err error
	for try := 0; try < 50; try++ {
		out, err = exec.Command("useradd", "-M", "-U", "-d", home, "-s", "/usr/sbin/nologin", name).CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("lock")) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	// The cleanup runs before the mail system's own (t.Cleanup is last in,
	// first out), while its delivery workers may still run as the user:
	// -f removes the account all the same.
	t.Cleanup(func() {
		for try := 0; try < 50; try++ {
			out, err := exec.Command("userdel", "-f", name).CombinedOutput()
			if err == nil {
				return
			}
			if !bytes.Contains(out, []byte("lock")) {
				t.Logf("userdel %s: %v: %s", name, err, out)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.MkdirAll(home, 0700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	return User{Name: name, Home: home, UID: uid, GID: gid}
}

// CountFiles returns how many entries dir holds (0 when it does not exist).
func CountFiles(dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	return len(entries)
}

// WaitFiles polls dir until it holds at least n entries or timeout passes,
// and returns how many it saw last.
func WaitFiles(dir string, n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		c := CountFiles(dir)
		if c >= n || time.Now().After(deadline) {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
}
