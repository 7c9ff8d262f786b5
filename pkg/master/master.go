package master

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"postdove/pkg/maillog"
	"postdove/pkg/postconf"
	"postdove/pkg/postqueue"
	"postdove/pkg/queue"
	"postdove/pkg/syserr"
)

// Version is what the master logs at start and reload.
const Version = "postdove-0.1"

// Environment variables through which the postfix binary is told to run as
// one of the mail system's processes instead of as the postfix command.
const (
	envRole   = "POSTDOVE_ROLE"
	envConfig = "MAIL_CONFIG"
	envReady  = "POSTDOVE_READY_FD"
	// envService names the master.cf entry ("pickup/unix") a daemon runs
	// for: its -o settings apply on top of main.cf.
	envService = "POSTDOVE_SERVICE"
)

// MaybeRun runs the master or one of its daemons and exits, when this
// process was started as one; otherwise it returns at once. The postfix
// command's main calls it first thing.
func MaybeRun() {
	role := os.Getenv(envRole)
	if role == "" {
		return
	}
	dir := os.Getenv(envConfig)
	// ps and ss -p name the process by its role, as Postfix's master,
	// smtpd, qmgr ... are named by their programs.
	os.WriteFile("/proc/self/comm", []byte(role), 0)
	if role == "master" {
		ready, _ := strconv.Atoi(os.Getenv(envReady))
		strayFDs(true, ready)
	} else {
		strayFDs(false, -1)
	}
	if servers[role] == nil && os.Getenv("GOMAXPROCS") == "" {
		// The master and the daemons other than servers (qmgr, local,
		// ...) wait far more than they compute: on one thread, as
		// Postfix's, they spend no CPU handing work between threads.
		// Blocking system calls (fsync) still run in parallel.
		runtime.GOMAXPROCS(1)
	}
	var err error
	switch role {
	case "master":
		err = runMaster(dir)
	case "pickup":
		err = runPickup(dir)
	case "qmgr":
		err = runQmgr(dir)
	case "local":
		err = runLocal(dir)
	case "error":
		err = runError(dir)
	case "discard":
		err = runDiscard(dir)
	case "showq":
		err = runShowq(dir)
	case "smtp", "lmtp":
		err = runSMTP(dir, role)
	default:
		if serve := servers[role]; serve != nil {
			err = runServer(dir, role, serve)
		} else {
			err = fmt.Errorf("unknown role %q", role)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "postfix/%s: fatal: %v\n", role, err)
		if role != "master" {
			logFatal(dir, role, err)
		}
		os.Exit(1)
	}
	os.Exit(0)
}

// logFatal puts a daemon's fatal error in the maillog, as Postfix's
// daemons do: their stderr goes nowhere. (The master's goes back to
// postfix start.)
func logFatal(dir, role string, err error) {
	cfg, e := postconf.Load(dir)
	if e != nil {
		return
	}
	if l, e := maillog.New(maillog.FromConfig(cfg.Get, role)); e == nil {
		l.Log(maillog.LevelFatal, "%v", err)
	}
}

// PIDFile is the master's pid file below queue_directory.
func PIDFile(queueDir string) string { return filepath.Join(queueDir, "pid", "master.pid") }

// Running returns the pid of the running master, or 0.
func Running(queueDir string) int {
	b, err := os.ReadFile(PIDFile(queueDir))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	if !Alive(pid) {
		return 0
	}
	// A recycled pid: make sure it is a master of ours.
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil &&
		!strings.Contains(string(cmd), envRole+"=master") {
		return 0
	}
	return pid
}

// Alive tells whether process pid runs. The master outlives postfix
// start, its parent: once it exits it stays a zombie until init reaps
// it, and a zombie whose threads have all exited (its files closed)
// counts as gone.
func Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true
	}
	zombie, threads := false, ""
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "State":
			zombie = strings.HasPrefix(strings.TrimSpace(v), "Z")
		case "Threads":
			threads = strings.TrimSpace(v)
		}
	}
	// A thread group leader is a zombie while its other threads still
	// exit, holding the process's descriptors.
	return !zombie || threads != "1"
}

// Spawn starts the master daemon for config directory dir in the
// background and waits until it is up (its pid file written) or has failed.
func Spawn(dir string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	cmd := exec.Command(exe)
	cmd.Args = []string{"master"}
	cmd.Env = append(os.Environ(), envRole+"=master", envConfig+"="+dir, envReady+"=3")
	cmd.Stdin, cmd.Stdout = devnull, devnull
	cmd.Stderr = w // startup errors come back through the pipe too
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, err
	}
	w.Close()
	pid := cmd.Process.Pid
	go cmd.Wait() // reap it if it dies early; if not, it outlives us
	msg := make([]byte, 4096)
	n, _ := readAll(r, msg)
	text := strings.TrimSpace(string(msg[:n]))
	if text != "ok" {
		if text == "" {
			text = "mail system startup failed"
		}
		return 0, errors.New(text)
	}
	return pid, nil
}

func readAll(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// child is one daemon the master keeps running.
type child struct {
	role    string              // what the process does: pickup, qmgr, local, showq
	service string              // the master.cf entry it runs for, "name/type"
	cred    *syscall.Credential // nil: stays root
	sockets []string            // the listening sockets it gets, by name (m.sockets)
	server  bool                // a registered server (RegisterServer)
	cmd     *exec.Cmd
	last    time.Time
}

type master struct {
	dir     string
	cfg     *postconf.Config
	log     *maillog.Logger
	logFile *os.File
	q       *queue.Queue
	owner   *syscall.Credential
	exited  chan *child
	kids    map[string]*child
	// retired are the servers of before a reload, finishing their
	// sessions; not restarted.
	retired     map[*child]bool
	terminating bool
	rebinding   bool // binding the sockets of a reload (bindInet)
	stopped     bool
	// status is the pipe whose read end every daemon inherits (statusFD);
	// the write end stays here, so it breaks when the master dies.
	status [2]*os.File
	// pidFile is pid/master.pid, locked; every daemon inherits it (lockFD).
	pidFile *os.File
	// sockets are the listening sockets the master binds for the daemons
	// (roleSockets), by name below queue_directory.
	sockets map[string]*os.File
	// watches are the on-demand services whose process is not running,
	// by service; woken gets one a client connected to (arm).
	watches map[string]*watch
	woken   chan *watch
}

// roleSockets are the sockets below queue_directory each role serves. The
// master binds them before it starts any daemon and keeps them across
// daemon restarts and reloads, as Postfix's master does: a client finds
// the socket as soon as postfix start returns, and waits in its backlog
// while a daemon restarts.
var roleSockets = map[string][]string{
	"showq": {queue.Public + "/" + postqueue.ShowqService, queue.Public + "/" + postqueue.FlushService},
}

func runMaster(dir string) error {
	var ready *os.File
	if fd, err := strconv.Atoi(os.Getenv(envReady)); err == nil {
		ready = os.NewFile(uintptr(fd), "ready")
		os.Unsetenv(envReady)
	}
	fail := func(err error) error {
		if ready != nil {
			fmt.Fprintf(ready, "postfix/master: fatal: %v\n", err)
			ready.Close()
		}
		return err
	}
	m := &master{dir: dir, exited: make(chan *child, 8), kids: map[string]*child{}, retired: map[*child]bool{}, sockets: map[string]*os.File{},
		watches: map[string]*watch{}, woken: make(chan *watch)}
	if err := m.load(); err != nil {
		return fail(err)
	}
	if err := queue.Setup(m.q.Dir, m.cfg.Get("mail_owner"), m.cfg.Get("setgid_group")); err != nil {
		return fail(err)
	}
	if err := m.lockPID(); err != nil {
		return fail(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	m.status = [2]*os.File{r, w}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	m.log.Info("daemon started -- version %s, configuration %s", Version, dir)
	for _, n := range m.cfg.CompatNotices() {
		m.log.Info("%s", n)
	}
	if err := m.startAll(false); err != nil {
		return fail(err)
	}
	if ready != nil {
		fmt.Fprintln(ready, "ok")
		ready.Close()
		// From here on stderr goes nowhere useful.
		if devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			syscall.Dup2(int(devnull.Fd()), 2)
		}
	}
	for {
		select {
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				m.log.Info("reload -- version %s, configuration %s", Version, dir)
				m.retireServers()
				m.stopAll(syscall.SIGTERM)
				if err := m.load(); err != nil {
					m.log.Warning("reload failed, keeping the old configuration: %v", err)
				}
				m.startAll(true)
			default:
				m.log.Info("terminating on signal %d", s.(syscall.Signal))
				m.terminating = true
				m.stopAll(syscall.SIGTERM)
				os.Remove(PIDFile(m.q.Dir))
				return nil
			}
		case w := <-m.woken:
			m.wake(w)
		case c := <-m.exited:
			delete(m.retired, c)
			if m.stopped || m.kids[c.service] != c {
				continue
			}
			st := c.cmd.ProcessState
			idle := onDemand(c.role) && st.ExitCode() == 0
			if !idle {
				m.log.Warning("process %s pid %d exit status %d", c.role, c.cmd.Process.Pid, st.ExitCode())
				// Throttle a daemon that dies at once, as master(8) does.
				if time.Since(c.last) < time.Second {
					time.Sleep(time.Second)
				}
			}
			if onDemand(c.role) {
				// Gone idle (or died): the next client starts another.
				delete(m.kids, c.service)
				m.arm(c.service, c.role, c.cred, c.sockets)
				continue
			}
			m.start(c.service, c.role, c.cred, c.sockets)
		}
	}
}

// load (re)reads main.cf and what depends on it.
func (m *master) load() error {
	cfg, err := postconf.Load(m.dir)
	if err != nil {
		return err
	}
	lo := maillog.FromConfig(cfg.Get, "master")
	lo.Inherited = nil
	f, err := maillog.Destination(lo)
	if err != nil {
		return err
	}
	lo.Inherited = f
	log, err := maillog.New(lo)
	if err != nil {
		return err
	}
	owner, err := ownerCred(cfg)
	if err != nil {
		return err
	}
	if m.logFile != nil && m.logFile != f {
		m.logFile.Close()
	}
	m.cfg, m.log, m.logFile, m.owner = cfg, log, f, owner
	m.q = queue.FromConfig(cfg)
	return nil
}

// ownerCred is mail_owner's uid and gid, with Postfix's fatal errors for
// an unknown or privileged account.
func ownerCred(cfg *postconf.Config) (*syscall.Credential, error) {
	name := cfg.Get("mail_owner")
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("file %s: parameter mail_owner: unknown user name value: %s", cfg.Path(), name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 {
		return nil, fmt.Errorf("file %s: parameter mail_owner: user %s has privileged user ID", cfg.Path(), name)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// daemons are the master.cf commands postdove runs, and the role each
// becomes. Postfix's other helpers (cleanup, trivial-rewrite, bounce, defer,
// trace, ...) are libraries inside these. Servers (smtpd) are registered
// with RegisterServer; other entries, and servers of types other than inet
// and unix (postscreen's pass), are left alone.
var daemons = map[string]string{
	"pickup":  "pickup",
	"qmgr":    "qmgr",
	"oqmgr":   "qmgr",
	"local":   "local",
	"showq":   "showq",
	"error":   "error",
	"discard": "discard",
	"smtp":    "smtp",
	"lmtp":    "lmtp",
}

// agents are the delivery agent roles: each serves its master.cf service's
// private/<name> socket (private/smtp, private/relay ...), which the
// queue manager connects to with the delivery contract.
var agents = map[string]bool{"local": true, "error": true, "discard": true, "smtp": true, "lmtp": true}

// sockets are the sockets below queue_directory the process for service
// ("name/type") in role serves.
func sockets(service, role string) []string {
	if agents[role] {
		name, _, _ := strings.Cut(service, "/")
		return []string{queue.Private + "/" + name}
	}
	return roleSockets[role]
}

// startAll starts a process for each master.cf service postdove runs, as
// mail_owner unless the service's unpriv column says n (local's does).
// The sockets no service uses any more are closed first: clients of a
// service gone from master.cf are refused, as when the system is down,
// instead of waiting, and an address given up can be bound again. Then
// every socket is bound before any daemon starts: at start a socket that
// cannot be bound is fatal, as with Postfix; on reload the service is left
// out with a warning, and an address still held by a daemon of before
// gets a few seconds to come free.
func (m *master) startAll(reload bool) error {
	m.stopped = false
	type job struct {
		service, role string
		cred          *syscall.Credential
		sockets       []string
	}
	var jobs []job
	used := map[string]bool{}
	for _, s := range m.cfg.Services() {
		j := job{service: s.Name + "/" + s.Type, cred: m.owner}
		if s.Unpriv == "n" {
			j.cred = nil
		}
		if role, ok := daemons[s.Command]; ok {
			j.role, j.sockets = role, sockets(j.service, role)
		} else if servers[s.Command] != nil && (s.Type == "inet" || s.Type == "unix") {
			names, err := serviceSockets(m.cfg, s)
			if err != nil {
				err = fmt.Errorf("%s: line %d: %v", s.File, s.Line, err)
				if !reload {
					return err
				}
				m.log.Warning("%v", err)
				continue
			}
			j.role, j.sockets = s.Command, names
		} else {
			continue
		}
		for _, name := range j.sockets {
			used[name] = true
		}
		jobs = append(jobs, j)
	}
	for name, f := range m.sockets {
		if !used[name] {
			f.Close()
			delete(m.sockets, name)
		}
	}
	m.rebinding = reload
	defer func() { m.rebinding = false }()
jobs:
	for _, j := range jobs {
		for _, name := range j.sockets {
			if _, err := m.bind(name); err != nil {
				if !reload {
					return err
				}
				m.log.Warning("%s: %v", j.service, err)
				continue jobs
			}
		}
		if onDemand(j.role) {
			m.arm(j.service, j.role, j.cred, j.sockets)
			continue
		}
		m.start(j.service, j.role, j.cred, j.sockets)
	}
	return nil
}

// retireServers tells the servers to stop accepting and exit once their
// sessions are over (postfix reload): the new ones take over the sockets
// at once.
func (m *master) retireServers() {
	for name, c := range m.kids {
		if c.server {
			c.cmd.Process.Signal(syscall.SIGHUP)
			m.retired[c] = true
			delete(m.kids, name)
		}
	}
}

func (m *master) start(service, role string, cred *syscall.Credential, names []string) *child {
	exe, err := os.Executable()
	if err != nil {
		m.log.Warning("cannot find my executable: %v", err)
		return nil
	}
	cmd := exec.Command(exe)
	cmd.Args = []string{role}
	cmd.Env = append(os.Environ(), envRole+"="+role, envConfig+"="+m.dir, envService+"="+service)
	cmd.Dir = m.q.Dir
	// statusFD, lockFD, then the log file and the sockets; ExtraFiles[i]
	// is the child's descriptor 3+i.
	cmd.ExtraFiles = []*os.File{m.status[0], m.pidFile}
	if m.logFile != nil {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", maillog.EnvLogFD, 3+len(cmd.ExtraFiles)))
		cmd.ExtraFiles = append(cmd.ExtraFiles, m.logFile)
	}
	var listen []string
	for _, name := range names {
		f, err := m.bind(name)
		if err != nil {
			m.log.Warning("%s: %v", role, err)
			return nil
		}
		listen = append(listen, fmt.Sprintf("%s=%d", name, 3+len(cmd.ExtraFiles)))
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	if listen != nil {
		cmd.Env = append(cmd.Env, envListen+"="+strings.Join(listen, ","))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	c := &child{role: role, service: service, cred: cred, sockets: names, server: servers[role] != nil, cmd: cmd, last: time.Now()}
	if err := cmd.Start(); err != nil {
		m.log.Warning("spawn %s: %v", role, err)
		return nil
	}
	m.kids[service] = c
	go func() {
		cmd.Wait()
		m.exited <- c
	}()
	return c
}

// stopAll stops the daemons in dependency order: first those that hand
// work on (pickup, qmgr), so that no delivery is cut off by the agent
// going away under it, then the rest. Each group gets 10 seconds before it
// is killed.
func (m *master) stopAll(sig syscall.Signal) {
	m.stopped = true
	m.disarmAll()
	m.stopGroup(sig, func(c *child) bool { return !agents[c.role] })
	m.stopGroup(sig, func(*child) bool { return true })
}

func (m *master) stopGroup(sig syscall.Signal, in func(*child) bool) {
	left := 0
	for _, c := range m.kids {
		if in(c) {
			c.cmd.Process.Signal(sig)
			left++
		}
	}
	// At postfix stop, the servers retired by a reload go too, with
	// their sessions.
	retired := map[*child]bool{}
	if m.terminating {
		for c := range m.retired {
			c.cmd.Process.Signal(sig)
			retired[c] = true
			left++
		}
	}
	deadline := time.After(10 * time.Second)
	for left > 0 {
		select {
		case c := <-m.exited:
			delete(m.retired, c)
			if retired[c] {
				delete(retired, c)
				left--
			} else if m.kids[c.service] == c {
				delete(m.kids, c.service)
				if in(c) {
					left--
				}
			}
		case <-deadline:
			for _, c := range m.kids {
				if in(c) {
					c.cmd.Process.Kill()
				}
			}
			for c := range retired {
				c.cmd.Process.Kill()
			}
			deadline = time.After(10 * time.Second)
		}
	}
}

// Waits for the daemons of a master that died (see lockPID).
const (
	staleWait = 30 * time.Second // for them to finish and exit
	staleKill = 10 * time.Second // after SIGKILL
)

// lockPID locks pid/master.pid and writes this process's pid into it. The
// lock, like Postfix's, keeps a second master off the queue; and since
// every daemon inherits the locked descriptor, it is held until the last
// daemon of a master has exited. After a master crash its daemons see
// their status pipe break, finish the deliveries under way and exit; a new
// master waits for that (killing them when they take too long) rather than
// run a second set of daemons on the same queue.
func (m *master) lockPID() error {
	path := PIDFile(m.q.Dir)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0644)
	if err != nil {
		return fmt.Errorf("open lock file %s: %v", path, syserr.Text(err))
	}
	start := time.Now()
	killed, said := false, false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return fmt.Errorf("open lock file %s: unable to set exclusive lock: %v", path, syserr.Text(err))
		}
		if Running(m.q.Dir) != 0 {
			f.Close()
			return errors.New("the Postfix mail system is already running")
		}
		if !said {
			m.log.Info("waiting for the processes of the previous master to exit")
			said = true
		}
		switch waited := time.Since(start); {
		case !killed && waited > staleWait:
			// They run in the old master's process group, which exists
			// as long as they do: its pid was not reused.
			if old := pidIn(f); old > 0 {
				m.log.Warning("killing the processes of master pid %d, which has died", old)
				syscall.Kill(-old, syscall.SIGKILL)
			}
			killed = true
			start = time.Now().Add(-staleWait)
		case killed && waited > staleWait+staleKill:
			f.Close()
			return fmt.Errorf("open lock file %s: unable to set exclusive lock: %v", path, syserr.Text(syscall.EWOULDBLOCK))
		}
		time.Sleep(50 * time.Millisecond)
	}
	b := []byte(fmt.Sprintf("%10d\n", os.Getpid()))
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %v", path, syserr.Text(err))
	}
	f.Truncate(int64(len(b)))
	m.pidFile = f
	return nil
}

// pidIn is the pid written in the pid file f, or 0.
func pidIn(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return 0
	}
	return pid
}

// bind returns the listening socket name (below queue_directory), binding
// it on first use: public sockets are open to all (the public folder
// keeps strangers out), private ones belong to mail_owner, mode 0600.
func (m *master) bind(name string) (*os.File, error) {
	if f := m.sockets[name]; f != nil {
		return f, nil
	}
	if strings.HasPrefix(name, "inet/") {
		wait := time.Duration(0)
		if m.rebinding {
			wait = 5 * time.Second
		}
		f, err := bindInet(name, wait)
		if err != nil {
			host, port, _ := net.SplitHostPort(strings.TrimPrefix(name, "inet/"))
			return nil, fmt.Errorf("bind %s port %s: %v", host, port, syserr.Text(err))
		}
		m.sockets[name] = f
		return f, nil
	}
	var ln net.Listener
	var err error
	if dir, base := filepath.Split(name); dir == queue.Public+"/" {
		ln, err = postqueue.ListenService(m.q.Dir, base)
	} else {
		ln, err = listenPrivate(filepath.Join(m.q.Dir, name), int(m.owner.Uid), int(m.owner.Gid))
	}
	if err != nil {
		return nil, fmt.Errorf("bind %s: %v", name, syserr.Text(err))
	}
	defer ln.Close() // the socket stays open in f, and its name in place
	f, err := ln.(*net.UnixListener).File()
	if err != nil {
		return nil, err
	}
	m.sockets[name] = f
	return f, nil
}

// listenPrivate binds the socket path for mail_owner (uid, gid), mode
// 0600. It gets its owner and mode under a temporary name, so that a
// client never finds one it may not connect to.
func listenPrivate(path string, uid, gid int) (net.Listener, error) {
	tmp := path + ".new"
	os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	for _, step := range []func() error{
		func() error { return os.Chown(tmp, uid, gid) },
		func() error { return os.Chmod(tmp, 0600) },
		func() error { return os.Rename(tmp, path) },
	} {
		if err := step(); err != nil {
			ln.Close()
			os.Remove(tmp)
			return nil, err
		}
	}
	return ln, nil
}
