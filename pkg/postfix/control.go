package postfix

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"postdove/pkg/maillog"
	"postdove/pkg/master"
	"postdove/pkg/postconf"
	"postdove/pkg/queue"
)

func init() {
	Register("start", controlled(runStart))
	Register("stop", controlled(func(c *control) error { return stop(c, syscall.SIGTERM, "stopping") }))
	Register("abort", controlled(func(c *control) error { return stop(c, syscall.SIGKILL, "aborting") }))
	Register("reload", controlled(runReload))
	Register("status", controlled(runStatus))
	Register("flush", controlled(runFlush))
	Register("set-permissions", controlled(runSetPermissions))
}

// controlled makes a command of a function that drives the mail system:
// it gets main.cf, the queue and the logger (words after the command are
// ignored, as postfix-script does).
func controlled(run func(c *control) error) Command {
	return func(env *Env, _ []string) error {
		c, err := newControl(env)
		if err != nil {
			return err
		}
		return run(c)
	}
}

// running is the master's pid, or postfix-script's fatal error when the
// mail system is not running.
func (c *control) running() (int, error) {
	pid := master.Running(c.q.Dir)
	if pid == 0 {
		return 0, c.fatal("the Postfix mail system is not running")
	}
	return pid, nil
}

// control is what the commands that drive the mail system share: main.cf,
// the queue and a logger that also tells the terminal, as postfix-script does.
type control struct {
	env *Env
	dir string
	cfg *postconf.Config
	q   *queue.Queue
	log *maillog.Logger
}

func newControl(env *Env) (*control, error) {
	dir := postconf.ConfigDir(env.ConfigDir)
	cfg, err := postconf.Load(dir)
	if err != nil {
		return nil, fatalf(progPostfix, "%v", err)
	}
	log, err := maillog.New(maillog.FromConfig(cfg.Get, "postfix-script"))
	if err != nil {
		return nil, fatalf(progPostfix, "%v", err)
	}
	return &control{env: env, dir: dir, cfg: cfg, q: queue.FromConfig(cfg), log: log}, nil
}

// info logs a postfix-script message and shows it on the terminal.
func (c *control) info(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	c.log.Info("%s", msg)
	fmt.Fprintf(c.env.Stderr, "%s: %s\n", progScript, msg)
}

// fatal logs a postfix-script fatal error and returns it.
func (c *control) fatal(format string, a ...any) error {
	err := fatalf(progScript, format, a...)
	c.log.Log(maillog.LevelFatal, "%s", err.(*Fatal).Msg)
	return err
}

// compatNotice tells the administrator, as Postfix does on a terminal, that
// legacy defaults are in force.
func (c *control) compatNotice() {
	notices := c.cfg.CompatNotices()
	if len(notices) == 0 {
		return
	}
	// The master logs the notices themselves, once.
	if isTerminal(c.env.Stderr) {
		fmt.Fprintf(c.env.Stderr, "%s: Postfix is using backwards-compatible default settings\n", progPostfix)
		fmt.Fprintf(c.env.Stderr, "%s: See http://www.postfix.org/COMPATIBILITY_README.html for details\n", progPostfix)
	}
}

func runStart(c *control) error {
	env := c.env
	// Like postfix-script, create missing queue directories first.
	if err := c.setPermissions(); err != nil {
		return c.fatal("unable to create missing queue directories: %v", err)
	}
	if err := Check(&Env{ConfigDir: env.ConfigDir, Stdout: env.Stdout, Stderr: env.Stderr}); err != nil {
		c.log.Log(maillog.LevelFatal, "Postfix integrity check failed!")
		return err
	}
	if master.Running(c.q.Dir) != 0 {
		return c.fatal("the Postfix mail system is already running")
	}
	c.compatNotice()
	c.info("starting the Postfix mail system")
	if _, err := master.Spawn(c.dir); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return c.fatal("mail system startup failed")
	}
	return nil
}

func stop(c *control, sig syscall.Signal, verb string) error {
	pid, err := c.running()
	if err != nil {
		return err
	}
	c.info("%s the Postfix mail system", verb)
	if sig == syscall.SIGKILL {
		// The master and its daemons share its session's process group.
		syscall.Kill(-pid, sig)
		os.Remove(master.PIDFile(c.q.Dir))
		return nil
	}
	syscall.Kill(pid, sig)
	deadline := time.Now().Add(30 * time.Second)
	waited := false
	for master.Alive(pid) && time.Now().Before(deadline) {
		if !waited && time.Now().Add(25*time.Second).After(deadline) {
			c.info("waiting for the Postfix mail system to terminate")
			waited = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	if master.Alive(pid) {
		c.log.Warning("stopping the Postfix mail system with force")
		fmt.Fprintf(c.env.Stderr, "%s: warning: stopping the Postfix mail system with force\n", progScript)
		syscall.Kill(-pid, syscall.SIGKILL)
		os.Remove(master.PIDFile(c.q.Dir))
	}
	return nil
}

func runReload(c *control) error {
	pid, err := c.running()
	if err != nil {
		return err
	}
	c.info("refreshing the Postfix mail system")
	return syscall.Kill(pid, syscall.SIGHUP)
}

func runStatus(c *control) error {
	pid := master.Running(c.q.Dir)
	if pid == 0 {
		c.info("the Postfix mail system is not running")
		return errSilent
	}
	c.info("the Postfix mail system is running: PID: %d", pid)
	return nil
}

func runFlush(c *control) error {
	if _, err := c.running(); err != nil {
		return err
	}
	if err := queue.Trigger(c.q.Dir, "qmgr", queue.QmgrScanAll); err != nil && !errors.Is(err, queue.ErrDown) {
		return c.fatal("%v", err)
	}
	return nil
}

func runSetPermissions(c *control) error {
	if err := c.setPermissions(); err != nil {
		return c.fatal("%v", err)
	}
	return nil
}

// setPermissions creates the queue directories, or fixes their owners and
// modes, as mail_owner and setgid_group say.
func (c *control) setPermissions() error {
	return queue.Setup(c.q.Dir, c.cfg.Get("mail_owner"), c.cfg.Get("setgid_group"))
}

// errSilent ends a command with exit status 1 after it said why itself.
var errSilent = &Fatal{}

// isTerminal reports whether w is a terminal (Postfix commands echo their
// log records there).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
