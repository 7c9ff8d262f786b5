package tests

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The master binds the daemons' sockets and keeps them: a request made
// while showq restarts on reload is answered by the new showq; a service
// taken out of master.cf refuses connections, as when the system is down,
// rather than leave clients waiting; put back, it answers again.
func TestMasterSocketsFollowMasterCF(t *testing.T) {
	l := labStart(t, "", "")
	sock := filepath.Join(l.QueueDir, "public", "showq")
	ask := func() error {
		c, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(labDeadline))
		fmt.Fprintf(c, "list\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "ok\n" {
			return fmt.Errorf("reply %q", line)
		}
		return nil
	}
	if err := ask(); err != nil {
		t.Fatalf("showq: %v", err)
	}
	// Reload restarts showq; requests made meanwhile wait for it.
	l.must(l.binCmd("postfix", "reload"), "")
	for i := 0; i < 20; i++ {
		if err := ask(); err != nil {
			t.Fatalf("showq request %d during reload: %v", i, err)
		}
	}

	mcf := filepath.Join(l.ConfigDir, "master.cf")
	orig, err := os.ReadFile(mcf)
	if err != nil {
		t.Fatal(err)
	}
	without := strings.Replace(string(orig), "\nshowq ", "\n#showq ", 1)
	if err := os.WriteFile(mcf, []byte(without), 0o644); err != nil {
		t.Fatal(err)
	}
	l.must(l.binCmd("postfix", "reload"), "")
	l.waitFor("public/showq to refuse connections", func() bool {
		return errors.Is(ask(), syscall.ECONNREFUSED)
	})
	if err := os.WriteFile(mcf, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	l.must(l.binCmd("postfix", "reload"), "")
	l.waitFor("public/showq to answer again", func() bool { return ask() == nil })
}

// A daemon that cannot start says why in the maillog, as Postfix's do
// (its stderr goes nowhere), here through rsyslogd; the master starts it
// again when it is needed, and it comes up once main.cf is fixed.
func TestDaemonFatalIsLogged(t *testing.T) {
	l := labSyslog(t, "", "")
	if l == nil {
		return
	}
	cf := filepath.Join(l.ConfigDir, "main.cf")
	orig, err := os.ReadFile(cf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cf, append(append([]byte{}, orig...), "command_time_limit = bogus\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	l.must(l.binCmd("postfix", "reload"), "")
	// As with Postfix, local starts when qmgr has mail for it.
	alice := l.user("pdtalice")
	if res := l.sendmail("Subject: waiting\n\nqueued while local is broken\n", alice.Name); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitLog(`postfix/local\[\d+\]: fatal: .*command_time_limit = bogus`)
	l.waitLog(`postfix/master\[\d+\]: warning: process local pid \d+ exit status 1`)
	if err := os.WriteFile(cf, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := l.sendmail("Subject: fixed\n\nlocal is back\n", alice.Name); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(alice.Name, "local is back")
}
