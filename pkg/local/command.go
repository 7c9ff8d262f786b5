package local

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// shellMeta are the characters that make a command go through the shell
// instead of being executed directly, as in Postfix.
const shellMeta = "\"$&'()*;<>?[\\]`{|}~=\n\r"

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

// commandArgv is how a command line is run: through the shell when it has
// shell metacharacters (or local_command_shell is set), else split on
// white space and executed directly.
func commandArgv(command string, shell []string) []string {
	if len(shell) > 0 {
		return append(append([]string{}, shell...), command)
	}
	if strings.ContainsAny(command, shellMeta) {
		return []string{"/bin/sh", "-c", command}
	}
	return strings.Fields(command)
}

// runCommand pipes the message into a command and maps its exit status.
func runCommand(j job, body io.Reader) reply {
	argv := commandArgv(j.Command, j.Shell)
	if len(argv) == 0 {
		return reply{Code: statusBounce, DSN: "5.3.0", Text: "empty command"}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return reply{Code: statusDefer, DSN: "4.3.0", Text: "pipe: " + err.Error()}
	}
	out := &limitedBuffer{max: maxOutput}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = j.Env
	cmd.Dir = j.Dir
	cmd.Stdin = pr
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return reply{Code: statusBounce, DSN: "5.3.0", Text: fmt.Sprintf("Command died with status 127: %q. Command output: %s", j.Command, errText(err))}
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
	output := out.text()
	withOutput := func(s string) string {
		if output == "" {
			return s
		}
		return s + ". Command output: " + output
	}
	if timedOut {
		return reply{Code: statusBounce, DSN: "5.3.0", Text: withOutput(fmt.Sprintf("Command time limit exceeded: %q", j.Command))}
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
		return reply{Code: statusDefer, DSN: "4.3.0", Text: withOutput(fmt.Sprintf("Command died with signal %d: %q", int(ws.Signal()), j.Command))}
	}
	code := ee.ExitCode()
	if se, ok := sysexits[code]; ok {
		rc := statusBounce
		if se.dsn[0] == '4' {
			rc = statusDefer
		}
		return reply{Code: rc, DSN: se.dsn, Text: withOutput(se.text)}
	}
	return reply{Code: statusBounce, DSN: "5.3.0", Text: withOutput(fmt.Sprintf("Command died with status %d: %q", code, j.Command))}
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

// text is the output on one line, with control characters and runs of
// white space turned into single spaces.
func (l *limitedBuffer) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.buf.String() {
		if r < ' ' || r == 0x7f {
			r = ' '
		}
		if r == ' ' && strings.HasSuffix(b.String(), " ") {
			continue
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}
