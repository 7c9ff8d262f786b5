package guest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"postdove/compat/systemd"
)

// UnitDirs are where units are looked up, in systemd's order.
var UnitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// StateDir holds what systemd would keep in memory: each started unit's
// main pid, state, start time and journal.
var StateDir = "/run/labnet/systemctl"

// WantsDir holds the links `systemctl enable` makes.
var WantsDir = "/etc/systemd/system/multi-user.target.wants"

// Systemctl is the host's `systemctl`: start, stop, restart, reload,
// status, enable, disable, is-active, is-enabled of service units, run
// through compat/systemd. It prints what systemctl prints and exits as it
// does (status and is-active: 3 for an inactive unit, 4 for an unknown one).
func Systemctl(args []string, stdout, stderr io.Writer) int {
	now := false
	var words []string
	for _, a := range args {
		switch a {
		case "--now":
			now = true
		case "-q", "--quiet", "--no-pager", "-l", "--full", "--no-block":
		default:
			if strings.HasPrefix(a, "-") {
				fmt.Fprintf(stderr, "systemctl: unrecognized option '%s'\n", a)
				return 1
			}
			words = append(words, a)
		}
	}
	if len(words) == 0 {
		fmt.Fprintln(stderr, "systemctl (labnet stand-in): a command and units are needed")
		return 1
	}
	verb, names := words[0], words[1:]
	if len(names) == 0 {
		fmt.Fprintf(stderr, "Too few arguments.\n")
		return 1
	}
	code := 0
	for _, name := range names {
		if name == "" || strings.ContainsAny(name, "/\x00") || strings.Trim(name, ".") == "" {
			fmt.Fprintf(stderr, "Unit name %s is not valid.\n", name)
			if code < 1 {
				code = 1
			}
			continue
		}
		if !strings.Contains(name, ".") {
			name += ".service"
		}
		u := &unit{name: name}
		if c := u.do(verb, now, stdout, stderr); c > code {
			code = c
		}
	}
	return code
}

type unit struct {
	name string
	path string // the unit file, "" if none
}

func (u *unit) find() bool {
	for _, d := range UnitDirs {
		p := filepath.Join(d, u.name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			// A link in /etc/systemd/system to the vendor's unit
			// (systemctl link) shows the target.
			if t, err := filepath.EvalSymlinks(p); err == nil {
				p = t
			}
			u.path = p
			return true
		}
	}
	return false
}

func (u *unit) state(key string) string {
	b, _ := os.ReadFile(filepath.Join(StateDir, u.name+"."+key))
	return strings.TrimSpace(string(b))
}

func (u *unit) setState(key, value string) {
	os.MkdirAll(StateDir, 0o755)
	os.WriteFile(filepath.Join(StateDir, u.name+"."+key), []byte(value+"\n"), 0o644)
}

func (u *unit) mainPID() int {
	pid, _ := strconv.Atoi(u.state("pid"))
	return pid
}

// active is systemd's ActiveState: active while the main process runs,
// failed after a failed start, else inactive.
func (u *unit) active() string {
	if pid := u.mainPID(); pid > 0 && systemd.Alive(pid) {
		return "active"
	}
	if u.state("result") == "failed" {
		return "failed"
	}
	return "inactive"
}

func (u *unit) wantsLink() string {
	return filepath.Join(WantsDir, u.name)
}

func (u *unit) enabled() bool {
	_, err := os.Lstat(u.wantsLink())
	return err == nil
}

func (u *unit) service() (*systemd.Service, error) {
	parsed, err := systemd.Load(u.path)
	if err != nil {
		return nil, err
	}
	return &systemd.Service{Unit: parsed, MainPID: u.mainPID()}, nil
}

func (u *unit) journal(s *systemd.Service) {
	os.MkdirAll(StateDir, 0o755)
	f, err := os.OpenFile(filepath.Join(StateDir, u.name+".journal"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(s.Output.Bytes())
	s.Output.Reset()
}

func (u *unit) do(verb string, now bool, stdout, stderr io.Writer) int {
	found := u.find()
	switch verb {
	case "is-active":
		st := u.active()
		fmt.Fprintln(stdout, st)
		if st == "active" {
			return 0
		}
		return 3
	case "is-enabled":
		if !found {
			fmt.Fprintf(stderr, "Failed to get unit file state for %s: No such file or directory\n", u.name)
			return 1
		}
		if u.enabled() {
			fmt.Fprintln(stdout, "enabled")
			return 0
		}
		fmt.Fprintln(stdout, "disabled")
		return 1
	case "status":
		if !found {
			fmt.Fprintf(stderr, "Unit %s could not be found.\n", u.name)
			return 4
		}
		return u.status(stdout)
	}
	if !found {
		switch verb {
		case "enable", "disable":
			fmt.Fprintf(stderr, "Failed to %s unit: Unit file %s does not exist.\n", verb, u.name)
			return 1
		case "start", "stop", "restart", "reload", "try-restart", "reload-or-restart":
			fmt.Fprintf(stderr, "Failed to %s %s: Unit %s not found.\n", verb, u.name, u.name)
			return 5
		}
	}
	switch verb {
	case "enable":
		link := u.wantsLink()
		if !u.enabled() {
			os.MkdirAll(filepath.Dir(link), 0o755)
			if err := os.Symlink(u.path, link); err != nil {
				fmt.Fprintf(stderr, "Failed to enable unit: %v\n", err)
				return 1
			}
			fmt.Fprintf(stderr, "Created symlink %s → %s.\n", link, u.path)
		}
		if now {
			return u.start(stderr)
		}
		return 0
	case "disable":
		if u.enabled() {
			os.Remove(u.wantsLink())
			fmt.Fprintf(stderr, "Removed \"%s\".\n", u.wantsLink())
		}
		if now {
			return u.stop(stderr)
		}
		return 0
	case "start":
		return u.start(stderr)
	case "stop":
		return u.stop(stderr)
	case "restart", "reload-or-restart":
		if c := u.stop(stderr); c != 0 {
			return c
		}
		return u.start(stderr)
	case "try-restart":
		if u.active() != "active" {
			return 0
		}
		if c := u.stop(stderr); c != 0 {
			return c
		}
		return u.start(stderr)
	case "reload":
		if u.active() != "active" {
			fmt.Fprintf(stderr, "%s is not active, cannot reload.\n", u.name)
			return 1
		}
		s, err := u.service()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		err = s.Reload()
		u.journal(s)
		if err != nil {
			u.jobFailed(stderr, "reload")
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "Unknown command verb %s.\n", verb)
	return 1
}

func (u *unit) jobFailed(w io.Writer, what string) {
	fmt.Fprintf(w, "Job for %s failed because the control process exited with error code.\n", u.name)
	fmt.Fprintf(w, "See \"systemctl status %s\" and \"journalctl -xeu %s\" for details.\n", u.name, u.name)
}

func (u *unit) start(stderr io.Writer) int {
	if u.active() == "active" {
		return 0
	}
	s, err := u.service()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	s.MainPID = 0
	err = s.Start()
	u.journal(s)
	if err != nil {
		os.MkdirAll(StateDir, 0o755)
		if f, e := os.OpenFile(filepath.Join(StateDir, u.name+".journal"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); e == nil {
			fmt.Fprintln(f, err)
			f.Close()
		}
		u.setState("pid", "0")
		u.setState("result", "failed")
		u.jobFailed(stderr, "start")
		return 1
	}
	u.setState("pid", strconv.Itoa(s.MainPID))
	u.setState("result", "success")
	u.setState("since", time.Now().Format("Mon 2006-01-02 15:04:05 MST"))
	return 0
}

func (u *unit) stop(stderr io.Writer) int {
	if u.active() != "active" {
		u.setState("result", "")
		return 0
	}
	s, err := u.service()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	err = s.Stop()
	u.journal(s)
	u.setState("pid", "0")
	u.setState("result", "")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// status prints systemctl status's head and the unit's last output.
func (u *unit) status(w io.Writer) int {
	desc := ""
	if p, err := systemd.Load(u.path); err == nil {
		desc = p.Value("Unit", "Description")
	}
	en := "disabled"
	if u.enabled() {
		en = "enabled"
	}
	st := u.active()
	dot := "○"
	switch st {
	case "active":
		dot = "●"
	case "failed":
		dot = "×"
	}
	fmt.Fprintf(w, "%s %s - %s\n", dot, u.name, desc)
	fmt.Fprintf(w, "     Loaded: loaded (%s; %s; vendor preset: disabled)\n", u.path, en)
	switch st {
	case "active":
		fmt.Fprintf(w, "     Active: active (running) since %s\n", u.state("since"))
		pid := u.mainPID()
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		fmt.Fprintf(w, "   Main PID: %d (%s)\n", pid, strings.TrimSpace(string(comm)))
	case "failed":
		fmt.Fprintf(w, "     Active: failed (Result: exit-code)\n")
	default:
		fmt.Fprintf(w, "     Active: inactive (dead)\n")
	}
	if b, err := os.ReadFile(filepath.Join(StateDir, u.name+".journal")); err == nil && len(b) > 0 {
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		fmt.Fprintf(w, "\n%s\n", strings.Join(lines, "\n"))
	}
	if st == "active" {
		return 0
	}
	return 3
}
