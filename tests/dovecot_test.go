package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/dovecot"
)

// TestDovecotDaemon runs bin/dovecot as an administrator does: it
// daemonizes and returns with its output captured to the end, writes
// base_dir/master.pid, answers on the imap listener, reloads, and stops
// (dovecot stop, doveadm stop); a configuration error is doveconf's, exit 89.
func TestDovecotDaemon(t *testing.T) {
	bin := oracle.Postdove(t, "dovecot")
	doveadm := oracle.Postdove(t, "doveadm")
	dir := t.TempDir()
	port := oracle.FreePort(t, "127.0.0.1")
	conf := filepath.Join(dir, "dovecot.conf")
	write := func(extra string) {
		os.WriteFile(conf, []byte(fmt.Sprintf("protocols = imap\nlisten = 127.0.0.1\nbase_dir = %s/run\nlog_path = %s/log\nssl = no\n"+
			"default_login_user = nobody\ndefault_internal_user = nobody\npassdb {\n  driver = static\n  args = password=x\n}\n"+
			"userdb {\n  driver = static\n  args = uid=54321 gid=54321 home=/nonexistent\n}\n"+
			"service imap-login {\n  inet_listener imap {\n    port = %d\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}\n%s", dir, dir, port, extra)), 0o644)
	}
	write("")
	pidFile := filepath.Join(dir, "run", "master.pid")
	t.Cleanup(func() { dovecot.Stop(pidFile) })

	done := make(chan []byte)
	go func() {
		out, _ := exec.Command(bin, "-c", conf).CombinedOutput()
		done <- out
	}()
	select {
	case out := <-done:
		if len(out) > 0 {
			t.Errorf("dovecot printed %q", out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dovecot did not return: its output pipe stays open")
	}
	pid := dovecot.Running(pidFile)
	if pid == 0 {
		t.Fatal("no master running after dovecot returned")
	}
	greet := func() string {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		l, _ := bufio.NewReader(c).ReadString('\n')
		return l
	}
	if g := greet(); g != "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n" {
		t.Errorf("greeting %q", g)
	}
	out, err := exec.Command(bin, "-c", conf).CombinedOutput()
	if want := fmt.Sprintf("Fatal: Dovecot is already running with PID %d (read from %s)\n", pid, pidFile); string(out) != want || exitCode(err) != 89 {
		t.Errorf("second start: %q exit %d, want %q", out, exitCode(err), want)
	}
	// reload with a new greeting keeps the listener and the master.
	write("login_greeting = Reloaded.\n")
	if out, err := exec.Command(doveadm, "-c", conf, "reload").CombinedOutput(); err != nil {
		t.Fatalf("doveadm reload: %v %s", err, out)
	}
	for end := time.Now().Add(5 * time.Second); !strings.HasSuffix(greet(), "Reloaded.\r\n") && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
	}
	if g := greet(); !strings.HasSuffix(g, "] Reloaded.\r\n") || dovecot.Running(pidFile) != pid {
		t.Errorf("after reload: %q, master %d (was %d)", g, dovecot.Running(pidFile), pid)
	}
	if out, err := exec.Command(bin, "-c", conf, "stop").CombinedOutput(); err != nil {
		t.Fatalf("dovecot stop: %v %s", err, out)
	}
	if dovecot.Running(pidFile) != 0 {
		t.Error("the master still runs after dovecot stop")
	}
	out, err = exec.Command(doveadm, "-c", conf, "stop").CombinedOutput()
	if want := "Fatal: Dovecot is not running (read from " + pidFile + ")\n"; string(out) != want || exitCode(err) != 89 {
		t.Errorf("doveadm stop when stopped: %q exit %d", out, exitCode(err))
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	for _, want := range []string{"master: Info: Dovecot v2.3.19.1 (postdove) starting up for imap", "master: Warning: SIGHUP received - reloading configuration",
		"imap-login: Info: Disconnected: Connection closed (no auth attempts in 0 secs): user=<>, rip=127.0.0.1, lip=127.0.0.1, secured, session=<"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	write("bogus_setting = 1\n")
	out, err = exec.Command(bin, "-c", conf).CombinedOutput()
	if !strings.HasPrefix(string(out), "doveconf: Fatal: Error in configuration file "+conf+" line 24: Unknown setting: bogus_setting") || exitCode(err) != 89 {
		t.Errorf("config error: %q exit %d", out, exitCode(err))
	}
	if out, _ := exec.Command(bin, "--version").Output(); string(out) != "2.3.19.1 (postdove)\n" {
		t.Errorf("--version: %q", out)
	}
}

func exitCode(err error) int {
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	return 0
}
