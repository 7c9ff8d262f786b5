package dovecot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"postdove/pkg/doveconf"
)

// envReady names the descriptor a daemonized master reports its start on.
const envReady = "POSTDOVE_DOVECOT_READY"

const usage = "Usage: dovecot [-F] [-c <config file>] [-p] [-n] [-a] [--help] [--version]\n" +
	"       [--build-options] [--hostdomain] [reload] [stop]\n"

// Main runs the dovecot command with args (args[0] is the program's name)
// and returns its exit code: the master (daemonized, or in the foreground
// with -F), "stop", "reload", -n and -a (as doveconf), --version; and,
// with a hidden argument, a user's mail process.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 1 && args[1] == mailArg {
		return runMail()
	}
	path, foreground, verb := doveconf.DefaultPath, false, ""
	var confArgs []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-F":
			foreground = true
		case a == "-c" && i+1 < len(args):
			i++
			path = args[i]
		case strings.HasPrefix(a, "-c") && len(a) > 2:
			path = a[2:]
		case a == "-n" || a == "-a":
			confArgs = append(confArgs, a)
		case a == "--version":
			fmt.Fprintf(stdout, "%s (%s)\n", doveconf.Version, doveconf.Revision)
			return 0
		case a == "-p" || a == "--hostdomain" || a == "--build-options":
			// -p asks for an SSL key password; there is none to ask.
		case (a == "stop" || a == "reload") && verb == "":
			verb = a
		default:
			fmt.Fprint(stderr, usage)
			return doveconf.ExitFatal
		}
	}
	if len(confArgs) > 0 {
		return doveconf.Main(append(append([]string{"doveconf"}, confArgs...), "-c", path), stdout, stderr)
	}
	fatal := func(msg string) int {
		fmt.Fprintf(stderr, "Fatal: %s\n", msg)
		return doveconf.ExitFatal
	}
	st, err := load(path)
	if err != nil {
		fmt.Fprintf(stderr, "doveconf: Fatal: %v\n", err)
		return doveconf.ExitFatal
	}
	for _, w := range st.cfg.Warnings {
		fmt.Fprintf(stderr, "doveconf: Warning: %s\n", w)
	}
	pidFile := filepath.Join(st.global.Get("base_dir"), "master.pid")
	pid := Running(pidFile)
	switch verb {
	case "stop", "reload":
		if pid == 0 {
			return fatal(fmt.Sprintf("Dovecot is not running (read from %s)", pidFile))
		}
		if verb == "reload" {
			syscall.Kill(pid, syscall.SIGHUP)
			return 0
		}
		if err := Stop(pidFile); err != nil {
			return fatal(err.Error())
		}
		return 0
	}
	if pid != 0 {
		return fatal(fmt.Sprintf("Dovecot is already running with PID %d (read from %s)", pid, pidFile))
	}
	if foreground {
		return runMaster(path, st, nil, stderr)
	}
	if fd, err := strconv.Atoi(os.Getenv(envReady)); err == nil {
		os.Unsetenv(envReady)
		return runMaster(path, st, os.NewFile(uintptr(fd), "ready"), stderr)
	}
	if err := spawn(args); err != nil {
		fmt.Fprint(stderr, err.Error())
		return doveconf.ExitFatal
	}
	return 0
}

// Running returns the pid of the master that pidFile names, or 0 when
// none runs.
func Running(pidFile string) int {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return 0
		}
	}
	return pid
}

// Stop stops the master that pidFile names and waits until it is gone.
func Stop(pidFile string) error {
	pid := Running(pidFile)
	if pid == 0 {
		return fmt.Errorf("Dovecot is not running (read from %s)", pidFile)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if Running(pidFile) != pid {
			return nil
		}
	}
	return fmt.Errorf("Dovecot (PID %d) did not stop", pid)
}

// Reload makes the master that pidFile names re-read its configuration.
func Reload(pidFile string) error {
	pid := Running(pidFile)
	if pid == 0 {
		return fmt.Errorf("Dovecot is not running (read from %s)", pidFile)
	}
	return syscall.Kill(pid, syscall.SIGHUP)
}

// PIDFile returns where the master of configuration file path writes its
// pid: base_dir/master.pid.
func PIDFile(path string) (string, error) {
	st, err := doveconf.Load(path)
	if err != nil {
		return "", err
	}
	return filepath.Join(st.Global().Get("base_dir"), "master.pid"), nil
}

// spawn starts the master as a daemon, in a session of its own with
// /dev/null for stdio, and waits until it is listening or has failed:
// its start-up errors come back through a pipe, which reaches end of file
// once it runs, so that a caller capturing our output is not held up.
func spawn(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	keepOwnDescriptors()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(exe, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Env = append(os.Environ(), envReady+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, w
	cmd.ExtraFiles = []*os.File{w}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return err
	}
	w.Close()
	go cmd.Wait()
	out, _ := io.ReadAll(r)
	if text := string(out); text != "ok\n" {
		if text == "" {
			text = "Fatal: Dovecot failed to start\n"
		}
		return errors.New(strings.TrimPrefix(text, "ok\n"))
	}
	return nil
}

// keepOwnDescriptors marks what this process inherited beyond stdio
// close-on-exec, so that the daemon does not keep a pipe of whoever ran
// `dovecot` (systemd's, a test's) open.
func keepOwnDescriptors() {
	names, _ := os.ReadDir("/proc/self/fd")
	for _, n := range names {
		if fd, err := strconv.Atoi(n.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// runMaster runs the master until SIGTERM; ready (nil in the foreground)
// is told "ok" once it listens, or the start-up error.
func runMaster(path string, st *state, ready *os.File, stderr io.Writer) int {
	errOut := stderr
	if ready != nil {
		errOut = ready
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(errOut, format, args...)
		if ready != nil {
			ready.Close()
		}
		return doveconf.ExitFatal
	}
	m, err := newMaster(path, st)
	if err != nil {
		return fail("Fatal: %v\n", err)
	}
	if err := m.listen(st); err != nil {
		m.log.logf("master: ", "Error", "%v", err)
		m.log.logf("master: ", "Fatal", "Failed to start listeners")
		return fail("Error: %s\nFatal: Failed to start listeners\n", strings.ReplaceAll(err.Error(), "\n", "\nError: "))
	}
	baseDir := st.global.Get("base_dir")
	os.MkdirAll(baseDir, 0o755)
	pidFile := filepath.Join(baseDir, "master.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		m.closeAll()
		return fail("Fatal: open(%s) failed: %v\n", pidFile, err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	m.log.logf("master: ", "Info", "%s", startupLine(st.global.Protocols()))
	if ready != nil {
		io.WriteString(ready, "ok\n")
		ready.Close()
		if devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
			syscall.Dup2(int(devnull.Fd()), 2)
			devnull.Close()
		}
	}
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			m.log.logf("master: ", "Warning", "SIGHUP received - reloading configuration")
			m.reload()
			continue
		}
		m.log.logf("master: ", "Warning", "Killed with signal %d", sig.(syscall.Signal))
		break
	}
	m.closeAll()
	m.procs.stopAll()
	if Running(pidFile) == os.Getpid() {
		os.Remove(pidFile)
	}
	m.log.set(nil)
	return 0
}

// reload re-reads the configuration; an error keeps the one in force.
func (m *master) reload() {
	st, err := load(m.path)
	if err == nil {
		err = m.listen(st)
	}
	if err == nil {
		err = m.setState(st)
	}
	if err != nil {
		m.log.logf("master: ", "Error", "%v", err)
	}
}

// startupLine is the master's first log line, as Dovecot words it: the
// protocols, and whether core dumps are disabled (RLIMIT_CORE of 0).
func startupLine(protocols []string) string {
	line := fmt.Sprintf("Dovecot v%s (%s) starting up", doveconf.Version, doveconf.Revision)
	if len(protocols) == 0 {
		line += " without any protocols"
	} else {
		line += " for " + strings.Join(protocols, ", ")
	}
	var core syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_CORE, &core) == nil && core.Cur == 0 {
		line += " (core dumps disabled)"
	}
	return line
}
