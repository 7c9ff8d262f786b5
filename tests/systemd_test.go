package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/systemd"
	"postdove/pkg/master"
)

// TestSystemdUnit runs postfix.service, as make install installs it, the
// way systemd runs it, with the mail system logging to rsyslogd:
// ExecStartPre and ExecStart with their output on pipes read to the end
// (a daemon that kept them would hang the start), PIDFile naming the
// master, then ExecReload and ExecStop.
func TestSystemdUnit(t *testing.T) {
	l := labSyslog(t, "", "")
	if l == nil {
		return
	}
	// The unit starts the system, not the lab.
	l.must(l.Command("postfix", "stop"), "")
	l.waitFor("the master to stop", func() bool { return master.Running(l.QueueDir) == 0 })

	// Daemons run the installed binary as mail_owner: not below a 0700
	// t.TempDir.
	dest, err := os.MkdirTemp("/var/tmp", "pdtunit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dest) })
	os.Chmod(dest, 0o755)
	installRun(t, "DESTDIR="+dest)
	u, err := systemd.Load(filepath.Join(dest, "usr/lib/systemd/system/postfix.service"))
	if err != nil {
		t.Fatal(err)
	}
	s := &systemd.Service{
		Unit:    u,
		Timeout: labDeadline,
		Env:     []string{"MAIL_CONFIG=" + l.ConfigDir},
		// The installed commands, this instance's queue.
		Path: func(p string) string {
			if rest, ok := strings.CutPrefix(p, "/var/spool/postfix/"); ok {
				return filepath.Join(l.QueueDir, rest)
			}
			if strings.HasPrefix(p, "/usr/") {
				return filepath.Join(dest, p)
			}
			return p
		},
	}
	for _, key := range []string{"ExecStartPre", "ExecStart", "ExecReload", "ExecStop"} {
		for _, line := range u.Values("Service", key) {
			if exe := strings.Fields(strings.TrimLeft(line, "-@+!:"))[0]; !strings.HasPrefix(exe, "/usr/sbin/") {
				t.Errorf("%s=%s: not a command make install puts in /usr/sbin", key, line)
			}
		}
	}
	if u.Value("Service", "Type") != "forking" || u.Value("Service", "PIDFile") != "/var/spool/postfix/pid/master.pid" {
		t.Errorf("Type=%s PIDFile=%s; want forking and the master's pid file", u.Value("Service", "Type"), u.Value("Service", "PIDFile"))
	}

	begin := time.Now()
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v\n%s", err, s.Output.String())
	}
	t.Logf("started in %v:\n%s", time.Since(begin).Round(time.Millisecond), s.Output.String())
	if pid := master.Running(l.QueueDir); pid == 0 || pid != s.MainPID || !s.Active() {
		t.Fatalf("PIDFile names %d, the running master is %d", s.MainPID, pid)
	}
	if !strings.Contains(s.Output.String(), "postfix/postfix-script: starting the Postfix mail system\n") {
		t.Errorf("start printed %q", s.Output.String())
	}
	l.waitLog(`postfix/postfix-script\[\d+\]: starting the Postfix mail system`)
	alice := l.user("pdtalice")
	if res := l.mail("through systemd\n", "-s", "unit", alice.Name); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(alice.Name, "through systemd")

	if err := s.Reload(); err != nil {
		t.Fatalf("reload: %v\n%s", err, s.Output.String())
	}
	l.waitLog(`postfix/master\[\d+\]: reload -- version \S+, configuration ` + regexp.QuoteMeta(l.ConfigDir))
	if !s.Active() || master.Running(l.QueueDir) != s.MainPID {
		t.Errorf("after reload the master is %d, want %d still", master.Running(l.QueueDir), s.MainPID)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, s.Output.String())
	}
	if master.Running(l.QueueDir) != 0 || s.Active() {
		t.Errorf("the master still runs after stop")
	}
	l.waitFor("the daemons to exit", func() bool { return len(l.daemons()) == 0 })
	if _, err := os.Stat(master.PIDFile(l.QueueDir)); err == nil {
		t.Errorf("stop left %s", master.PIDFile(l.QueueDir))
	}
}
