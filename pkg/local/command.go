package local

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"postdove/pkg/syserr"
	"strings"
	"sync"
	"syscall"
	"time"
)

// directChars are the characters of a command that Postfix runs without
// a shell; any other character sends it through /bin/sh -c.
const directChars = "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \t"

// maxOutput bounds the command output kept for a bounce.
const maxOutput = 2048

// sysexit is one sysexits.h status as Postfix reports it.
type sysexit struct{ dsn, text string }

var sysexits = map[int]sysexit{
	64: {"5.3.0", "command line usage error"},
	65: {"5.6.0", "data format error"},
	66: {"5.3.0", "cannot open input"},
	67: {"5.1.1", "user unknown"},
	68: {"5.1.2", "host name unknown"},
	69: {"5.3.0", "service unavailable"},
	70: {"5.3.0", "internal software error"},
	71: {"4.3.0", "system resource problem"},
	72: {"5.3.0", "critical OS file missing"},
	73: {"5.2.0", "can't create user output file"},
	74: {"5.3.0", "input/output error"},
	75: {"4.3.0", "temporary failure"},
	76: {"5.5.0", "remote error in protocol"},
	77: {"5.7.0", "permission denied"},
	78: {"5.3.5", "local configuration error"},
}

// commandArgv is how a command line is run, as Postfix runs it: with
// local_command_shell when set; split on blanks and executed directly
// when made of directChars only (direct is then true), except that a
// program name without a slash that is not found in the PATH of env goes
// to the shell too (a shell builtin such as "exit 75", or a typo the
// shell will report); otherwise through /bin/sh -c.
func commandArgv(command string, shell, env []string) (argv []string, direct bool) {
	if len(shell) > 0 {
		return append(append([]string{}, shell...), command), false
	}
	sh := []string{"/bin/sh", "-c", command}
	for i := 0; i < len(command); i++ {
		if strings.IndexByte(directChars, command[i]) < 0 {
			return sh, false
		}
	}
	argv = strings.FieldsFunc(command, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(argv) == 0 {
		return sh, false
	}
	if !strings.Contains(argv[0], "/") {
		path := lookPath(argv[0], env)
		if path == "" {
			return sh, false
		}
		argv[0] = path
	}
	return argv, true
}

// lookPath finds an executable name in the PATH of env, as execvp(3)
// does; "" when there is none.
func lookPath(name string, env []string) string {
	dirs := "/usr/bin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			dirs = v
		}
	}
	for _, dir := range strings.Split(dirs, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && syscall.Access(p, 1) == nil {
			return p
		}
	}
	return ""
}

// execFailed is a command that could not be executed: Postfix's child
// logs a fatal error and exits with EX_TEMPFAIL, so the delivery is
// deferred with that error as the command's output.
func execFailed(name string, err error) reply {
	fatal := fmt.Sprintf("execvp %s: %s", name, syserr.Text(err))
	return reply{Code: statusDefer, DSN: sysexits[75].dsn, Text: sysexits[75].text + ". Command output: local: fatal: " + fatal + " ", Notes: []string{"fatal: " + fatal}}
}

// runCommand pipes the message into a command and maps its exit status.
func runCommand(j job, body io.Reader) reply {
	argv, direct := commandArgv(j.Command, j.Shell, j.Env)
	name := argv[0]
	pr, pw, err := os.Pipe()
	if err != nil {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: "pipe: " + err.Error()}
	}
	out := &limitedBuffer{max: maxOutput}
	start := func(argv []string) (*exec.Cmd, error) {
		cmd := exec.Command(argv[0], argv[1:]...)
		if argv[0] == "/bin/sh" && len(j.Shell) == 0 {
			cmd.Args[0] = "sh" // as execl(3) runs it: "sh: 1: x: not found"
		}
		cmd.Env = j.Env
		cmd.Dir = j.Dir
		cmd.Stdin = pr
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd, cmd.Start()
	}
	cmd, err := start(argv)
	if direct && errors.Is(err, syscall.ENOEXEC) {
		// A script without #!: execvp(3) hands it to the shell.
		cmd, err = start(append([]string{"/bin/sh"}, argv...))
	}
	if err != nil {
		pr.Close()
		pw.Close()
		if direct {
			return execFailed(name, err)
		}
		return reply{Code: statusDefer, DSN: "4.3.0", Text: fmt.Sprintf("execl /bin/sh: %s", syserr.Text(err))}
	}
	pr.Close()
	var writeErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		writeErr = writeMessage(pw, j, body)
		pw.Close()
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timedOut := false
	limit := j.Timeout
	if limit <= 0 {
		limit = 1000 * time.Second
	}
	var waitErr error
	select {
	case waitErr = <-done:
	case <-time.After(limit):
		timedOut = true
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		waitErr = <-done
	}
	pw.Close() // unblock the writer if the command stopped reading
	wg.Wait()
	if errors.Is(writeErr, errAborted) {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: "message transfer aborted"}
	}
	withOutput := func(s string) string {
		if out.empty() {
			return s
		}
		return s + ". Command output: " + out.text()
	}
	if timedOut {
		return reply{Code: statusBounce, DSN: "5.3.0", Text: withOutput(fmt.Sprintf("Command time limit exceeded: \"%s\"", j.Command))}
	}
	if waitErr == nil {
		return reply{Code: statusSent}
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: withOutput("Command failed: " + waitErr.Error())}
	}
	ws, _ := ee.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: withOutput(fmt.Sprintf("Command died with signal %d: \"%s\"", int(ws.Signal()), j.Command))}
	}
	code := ee.ExitCode()
	if se, ok := sysexits[code]; ok {
		rc := statusBounce
		if se.dsn[0] == '4' {
			rc = statusDefer
		}
		return reply{Code: rc, DSN: se.dsn, Text: withOutput(se.text)}
	}
	return reply{Code: statusBounce, DSN: "5.3.0", Text: withOutput(fmt.Sprintf("Command died with status %d: \"%s\"", code, j.Command))}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		l.buf.Write(p[:room])
	}
	return len(p), nil
}

func (l *limitedBuffer) empty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len() == 0
}

// text is the output on one line as Postfix reports it: up to the first
// NUL byte, tabs and newlines as spaces, other control characters as '_'
// (nothing trimmed or squeezed).
func (l *limitedBuffer) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.buf.Bytes()
	if i := bytes.IndexByte(out, 0); i >= 0 {
		out = out[:i]
	}
	b := make([]byte, len(out))
	for i, c := range out {
		switch {
		case c == '\t' || c == '\n':
			c = ' '
		case c < ' ' || c == 0x7f:
			c = '_'
		}
		b[i] = c
	}
	return string(b)
}
