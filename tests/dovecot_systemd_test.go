package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/compat/systemd"
	"postdove/pkg/dovecot"
)

// TestDovecotSystemd runs dovecot.service, as make install installs it,
// the way systemd runs it, under a real rsyslogd: ExecStart returns with
// its output pipes read to the end, PIDFile names the running master,
// ExecReload (doveadm reload) keeps it and reads the changed
// configuration, ExecStop (doveadm stop) ends it, and the maillog gets
// Dovecot's lines. The configuration is the installed stock tree, seen
// at /etc/dovecot (with the installed certificate at /etc/pki/dovecot)
// through an overlay in the test's private mount namespace, with the
// lab's edit (protocols = imap) and this test's listener in local.conf.
func TestDovecotSystemd(t *testing.T) {
	sys := oracle.UnderSyslog(t)
	if sys == nil {
		return
	}
	oracle.Postdove(t, "dovecot") // builds bin/
	dest, err := os.MkdirTemp("/var/tmp", "pdtdcunit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dest) })
	os.Chmod(dest, 0o755)
	installRun(t, "DESTDIR="+dest)

	// /etc as the installed system has it: the host's, with the installed
	// dovecot and pki folders over it.
	upper, work, run := filepath.Join(dest, "upper"), filepath.Join(dest, "work"), filepath.Join(dest, "run")
	for _, d := range []string{upper, work, run} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-a", filepath.Join(dest, "etc/dovecot"), filepath.Join(dest, "etc/pki"), upper).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	port := oracle.FreePort(t, "127.0.0.1")
	local := filepath.Join(upper, "dovecot/local.conf")
	writeLocal := func(extra string) {
		conf := fmt.Sprintf("protocols = imap\nlisten = 127.0.0.1\nbase_dir = %s\n"+
			"service imap-login {\n  inet_listener imap {\n    port = %d\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}\n%s", run, port, extra)
		if err := os.WriteFile(local, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeLocal("")
	if err := syscall.Mount("overlay", "/etc", "overlay", 0, "lowerdir=/etc,upperdir="+upper+",workdir="+work); err != nil {
		t.Skipf("overlay on /etc: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount("/etc", syscall.MNT_DETACH) })
	local = "/etc/dovecot/local.conf"

	u, err := systemd.Load(filepath.Join(dest, "usr/lib/systemd/system/dovecot.service"))
	if err != nil {
		t.Fatal(err)
	}
	const pidPath = "/var/run/dovecot/master.pid"
	if u.Value("Service", "Type") != "forking" || u.Value("Service", "PIDFile") != pidPath ||
		u.Value("Service", "ExecStart") != "/usr/sbin/dovecot" || u.Value("Service", "ExecReload") != "/usr/bin/doveadm reload" ||
		u.Value("Service", "ExecStop") != "/usr/bin/doveadm stop" {
		t.Errorf("the unit is not CentOS 7's dovecot.service: %s", u.Path)
	}
	pidFile := filepath.Join(run, "master.pid")
	s := &systemd.Service{
		Unit:    u,
		Timeout: labDeadline,
		// The installed commands; base_dir is this test's.
		Path: func(p string) string {
			if p == pidPath {
				return pidFile
			}
			if strings.HasPrefix(p, "/usr/") {
				return filepath.Join(dest, p)
			}
			return p
		},
	}
	t.Cleanup(func() { dovecot.Stop(pidFile) })
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v\n%s", err, s.Output.String())
	}
	if pid := dovecot.Running(pidFile); pid == 0 || pid != s.MainPID || !s.Active() {
		t.Fatalf("PIDFile names %d, the running master is %d", s.MainPID, pid)
	}
	if s.Output.Len() > 0 {
		t.Errorf("ExecStart printed %q", s.Output.String())
	}
	logout := func() string {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		greeting, _ := r.ReadString('\n')
		fmt.Fprintf(c, "a LOGOUT\r\n")
		for {
			if l, err := r.ReadString('\n'); err != nil || strings.HasPrefix(l, "a ") {
				break
			}
		}
		return greeting
	}
	// The stock ssl = required with the certificate make install made:
	// STARTTLS, and no plaintext before it (127.0.0.1 is secured, though).
	if g := logout(); g != "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n" {
		t.Errorf("greeting %q", g)
	}
	waitMaillog(t, sys.File,
		`dovecot: master: Dovecot v2\.3\.19\.1 \(postdove\) starting up for imap`,
		`dovecot: imap-login: Disconnected: Aborted login by logging out \(no auth attempts in 0 secs\): user=<>, rip=127\.0\.0\.1, lip=127\.0\.0\.1, secured, session=<[\w+/]{16}>`)

	writeLocal("login_greeting = Reloaded.\n")
	if err := s.Reload(); err != nil {
		t.Fatalf("reload: %v\n%s", err, s.Output.String())
	}
	waitMaillog(t, sys.File, `dovecot: master: Warning: SIGHUP received - reloading configuration`)
	for end := time.Now().Add(labDeadline); !strings.HasSuffix(logout(), "] Reloaded.\r\n"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the reloaded login_greeting is not used")
		}
	}
	if !s.Active() || dovecot.Running(pidFile) != s.MainPID {
		t.Errorf("after reload the master is %d, want %d still", dovecot.Running(pidFile), s.MainPID)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, s.Output.String())
	}
	if dovecot.Running(pidFile) != 0 || s.Active() {
		t.Error("the master still runs after stop")
	}
	if _, err := os.Stat(pidFile); err == nil {
		t.Errorf("stop left %s", pidFile)
	}
	waitMaillog(t, sys.File, `dovecot: master: Warning: Killed with signal 15`)
}

// waitMaillog waits until the maillog has a line matching each pattern.
func waitMaillog(t *testing.T, file string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		for end := time.Now().Add(labDeadline); ; time.Sleep(50 * time.Millisecond) {
			b, _ := os.ReadFile(file)
			if re.Match(b) {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("the maillog has no line matching %q:\n%s", p, b)
			}
		}
	}
}
