// Package systemd is a small stand-in for systemd's service manager, for
// tests and lab hosts without systemd: it reads a unit file (systemd.unit(5),
// systemd.service(5)) and runs its [Service] commands as systemd would —
// ExecStartPre, ExecStart, ExecReload, ExecStop, with Type=forking or simple
// and PIDFile — so that a unit such as etc/systemd/postfix.service can be
// checked the way `systemctl start` uses it.
package systemd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Unit is a parsed unit file: its settings by section and key, in order
// (a key may repeat, as ExecStartPre does; an empty assignment resets it).
type Unit struct {
	Path     string
	sections map[string]map[string][]string
}

// Load reads and parses the unit file path.
func Load(path string) (*Unit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads a unit file from r; name is used in error messages.
func Parse(r io.Reader, name string) (*Unit, error) {
	u := &Unit{Path: name, sections: map[string]map[string][]string{}}
	sc := bufio.NewScanner(r)
	section, line, n := "", "", 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if line == "" && (text == "" || text[0] == '#' || text[0] == ';') {
			continue
		}
		if strings.HasSuffix(text, "\\") {
			line += strings.TrimRight(strings.TrimSuffix(text, "\\"), " \t") + " "
			continue
		}
		line += text
		switch {
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u.sections[section] == nil {
				u.sections[section] = map[string][]string{}
			}
		case section == "":
			return nil, fmt.Errorf("%s:%d: assignment outside of a section", name, n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("%s:%d: missing '=': %q", name, n, line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if v == "" {
				delete(u.sections[section], k)
			} else {
				u.sections[section][k] = append(u.sections[section][k], v)
			}
		}
		line = ""
	}
	return u, sc.Err()
}

// Values are every value of key in section, in order.
func (u *Unit) Values(section, key string) []string { return u.sections[section][key] }

// Value is the last value of key in section, or "".
func (u *Unit) Value(section, key string) string {
	v := u.Values(section, key)
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// Service runs a unit's [Service] section.
type Service struct {
	Unit *Unit
	// Path maps a path in the unit (an executable, PIDFile,
	// EnvironmentFile) to the one to use: tests run built binaries in
	// place of installed ones. Nil keeps paths as they are.
	Path func(string) string
	// Env is added to the environment of every command (after the
	// unit's Environment= and EnvironmentFile=).
	Env []string
	// Timeout bounds each command (systemd's TimeoutStartSec and
	// TimeoutStopSec); default 90 s, as systemd's.
	Timeout time.Duration
	// MainPID is the service's main process once started: PIDFile's pid
	// (Type=forking) or ExecStart's own (Type=simple).
	MainPID int
	// Output collects what the commands printed, as the journal would.
	Output bytes.Buffer
}

func (s *Service) path(p string) string {
	if s.Path == nil {
		return p
	}
	return s.Path(p)
}

func (s *Service) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 90 * time.Second
}

// Start runs ExecStartPre and ExecStart. For Type=forking (and oneshot)
// ExecStart must exit 0, and print to its output pipes until then only:
// like systemd, Start waits for both pipes to close too. MainPID is then
// read from PIDFile. For Type=simple, ExecStart's process is the service.
func (s *Service) Start() error {
	for _, line := range s.Unit.Values("Service", "ExecStartPre") {
		if err := s.run("ExecStartPre", line); err != nil {
			return err
		}
	}
	typ := s.Unit.Value("Service", "Type")
	start := s.Unit.Values("Service", "ExecStart")
	if len(start) == 0 {
		return fmt.Errorf("%s: no ExecStart", s.Unit.Path)
	}
	if typ == "" || typ == "simple" || typ == "exec" {
		cmd, _, err := s.command(start[len(start)-1])
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = &s.Output, &s.Output
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("ExecStart: %w", err)
		}
		s.MainPID = cmd.Process.Pid
		go cmd.Wait()
		return nil
	}
	for _, line := range start {
		if err := s.run("ExecStart", line); err != nil {
			return err
		}
	}
	pidFile := s.Unit.Value("Service", "PIDFile")
	if pidFile == "" {
		return nil
	}
	b, err := os.ReadFile(s.path(pidFile))
	if err != nil {
		return fmt.Errorf("PIDFile: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("PIDFile %s: no pid: %q", pidFile, b)
	}
	s.MainPID = pid
	return nil
}

// Reload runs ExecReload (MAINPID names the main process).
func (s *Service) Reload() error {
	lines := s.Unit.Values("Service", "ExecReload")
	if len(lines) == 0 {
		return fmt.Errorf("%s: no ExecReload", s.Unit.Path)
	}
	for _, line := range lines {
		if err := s.run("ExecReload", line); err != nil {
			return err
		}
	}
	return nil
}

// Stop runs ExecStop, or sends SIGTERM without one, and waits up to the
// timeout for the main process to exit; then it is killed, as systemd
// does, and Stop says so.
func (s *Service) Stop() error {
	var err error
	if lines := s.Unit.Values("Service", "ExecStop"); len(lines) > 0 {
		for _, line := range lines {
			if e := s.run("ExecStop", line); e != nil && err == nil {
				err = e
			}
		}
	} else if s.MainPID > 0 {
		syscall.Kill(s.MainPID, syscall.SIGTERM)
	}
	if s.MainPID <= 0 {
		return err
	}
	deadline := time.Now().Add(s.timeout())
	for Alive(s.MainPID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if Alive(s.MainPID) {
		syscall.Kill(s.MainPID, syscall.SIGKILL)
		return errors.Join(err, fmt.Errorf("main process %d still running after %v: killed", s.MainPID, s.timeout()))
	}
	s.MainPID = 0
	return err
}

// Active tells whether the main process runs (systemctl is-active).
func (s *Service) Active() bool { return s.MainPID > 0 && Alive(s.MainPID) }

// Alive tells whether pid runs (a zombie counts as gone).
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// run runs one command line to completion, its output on pipes read to
// the end, within the timeout.
func (s *Service) run(what, line string) error {
	cmd, ignore, err := s.command(line)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout())
	defer cancel()
	// Pipes, not files: the wait ends when every process holding them
	// has closed them.
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		if ignore {
			return nil
		}
		return fmt.Errorf("%s=%s: %w", what, line, err)
	}
	done := make(chan struct{})
	go func() {
		io.Copy(&s.Output, out)
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait() // closes the pipe, which ends the copy
		<-done
		return fmt.Errorf("%s=%s: output still open after %v (a process it started holds it)", what, line, s.timeout())
	}
	err = cmd.Wait()
	if err != nil && !ignore {
		return fmt.Errorf("%s=%s: %w", what, line, err)
	}
	return nil
}

// command makes the exec.Cmd for a command line: the prefixes "-" (a
// failure is ignored), "@", "+", "!", ":" are taken off, words are split
// as systemd does (double and single quotes, backslash escapes), and
// $VAR/${VAR} are replaced from the environment.
func (s *Service) command(line string) (*exec.Cmd, bool, error) {
	ignore := false
	for len(line) > 0 && strings.ContainsRune("-@+!:", rune(line[0])) {
		ignore = ignore || line[0] == '-'
		line = line[1:]
	}
	env, err := s.environ()
	if err != nil {
		return nil, false, err
	}
	argv, err := splitWords(line, env)
	if err != nil || len(argv) == 0 {
		return nil, false, fmt.Errorf("bad command line %q: %v", line, err)
	}
	cmd := exec.Command(s.path(argv[0]), argv[1:]...)
	cmd.Env = env
	if pid := s.MainPID; pid > 0 {
		cmd.Env = append(cmd.Env, "MAINPID="+strconv.Itoa(pid))
	}
	cmd.Dir = "/"
	return cmd, ignore, nil
}

// environ is what systemd gives the commands: a minimal PATH, the unit's
// Environment= and EnvironmentFile= settings, then Env.
func (s *Service) environ() ([]string, error) {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	for _, v := range s.Unit.Values("Service", "Environment") {
		words, err := splitWords(v, nil)
		if err != nil {
			return nil, err
		}
		env = append(env, words...)
	}
	for _, f := range s.Unit.Values("Service", "EnvironmentFile") {
		optional := strings.HasPrefix(f, "-")
		b, err := os.ReadFile(s.path(strings.TrimPrefix(f, "-")))
		if err != nil {
			if optional {
				continue
			}
			return nil, fmt.Errorf("EnvironmentFile: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || l[0] == '#' || l[0] == ';' || !strings.Contains(l, "=") {
				continue
			}
			k, v, _ := strings.Cut(l, "=")
			if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
				v = v[1 : len(v)-1]
			}
			env = append(env, strings.TrimSpace(k)+"="+v)
		}
	}
	return append(env, s.Env...), nil
}

// splitWords splits a command line into words; with env, $VAR and ${VAR}
// outside single quotes are replaced by their values.
func splitWords(line string, env []string) ([]string, error) {
	lookup := func(name string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if k, v, _ := strings.Cut(env[i], "="); k == name {
				return v
			}
		}
		return ""
	}
	var words []string
	var w strings.Builder
	inWord := false
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && quote != '\'' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
			inWord = true
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote, inWord = c, true
		case quote == 0 && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '$' && quote != '\'' && env != nil && i+1 < len(line):
			name := ""
			if line[i+1] == '{' {
				end := strings.IndexByte(line[i:], '}')
				if end < 0 {
					return nil, errors.New("unterminated ${")
				}
				name = line[i+2 : i+end]
				i += end
			} else {
				j := i + 1
				for j < len(line) && (line[j] == '_' || line[j] >= 'A' && line[j] <= 'Z' || line[j] >= 'a' && line[j] <= 'z' || line[j] >= '0' && line[j] <= '9') {
					j++
				}
				name = line[i+1 : j]
				i = j - 1
			}
			if name == "" {
				w.WriteByte('$')
			} else {
				w.WriteString(lookup(name))
			}
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
