package tests

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// smtpSession is one SMTP client connection and its banner.
type smtpSession struct {
	c      net.Conn
	r      *bufio.Reader
	banner string
}

func smtpDial(addr string) (*smtpSession, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	s := &smtpSession{c: c, r: bufio.NewReader(c)}
	c.SetReadDeadline(time.Now().Add(labDeadline))
	if s.banner, err = s.r.ReadString('\n'); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func (s *smtpSession) cmd(line string) (string, error) {
	s.c.SetReadDeadline(time.Now().Add(labDeadline))
	if _, err := fmt.Fprintf(s.c, "%s\r\n", line); err != nil {
		return "", err
	}
	return s.r.ReadString('\n')
}

// loopbackX is 127.0.x.y with x and y random: port 25 of 127.0.0.1 may
// be taken on the machine, and tests run at once.
func loopbackX() string { return fmt.Sprintf("127.0.%d.%d", rand.IntN(250)+1, rand.IntN(250)+2) }

func listenWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(labDeadline); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The master binds master.cf's smtp service on inet_interfaces and smtpd
// serves it as mail_owner; `ss -ltnp` shows both, as the lab expects. A
// postfix reload after postconf -e moves the listener and gives new
// sessions the new myhostname while an open session goes on; a service's
// process limit makes further clients wait; a service taken out of
// master.cf stops listening.
func TestSmtpdListeners(t *testing.T) {
	a, b := loopbackX(), loopbackX()
	for a == b {
		b = loopbackX()
	}
	smtp := "smtp      inet  n       -       n       -       -       smtpd\n"
	limited := a + ":2526 inet n - n - 1 smtpd\n"
	inst := oracle.StartPostdove(t, oracle.PostfixOptions{
		Hostname: "vm2.example.ops",
		MainCF:   "inet_interfaces = " + a + "\n",
		MasterCF: smtp + limited,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("maillog:\n%s", inst.ReadMaillog())
		}
	})

	s1, err := smtpDial(a + ":25")
	if err != nil {
		t.Fatalf("nc %s 25: %v", a, err)
	}
	defer s1.c.Close()
	if !strings.HasPrefix(s1.banner, "220 vm2.example.ops ESMTP") {
		t.Fatalf("banner %q", s1.banner)
	}
	out, err := exec.Command("ss", "-ltnpH", "sport = :25").CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v: %s", err, out)
	}
	ss := string(out)
	m := regexp.MustCompile(`"smtpd",pid=(\d+)`).FindStringSubmatch(ss)
	if !strings.Contains(ss, a+":25 ") || !strings.Contains(ss, `"master"`) || m == nil {
		t.Fatalf("ss -ltnp:\n%s", ss)
	}
	status, err := os.ReadFile("/proc/" + m[1] + "/status")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status), fmt.Sprintf("\nUid:\t%s\t%s\t%s\t%s\n", owner.Uid, owner.Uid, owner.Uid, owner.Uid)) {
		t.Errorf("smtpd does not run as mail_owner:\n%s", status)
	}

	// The process limit of 1: a second client waits in the listen queue
	// for the first to leave.
	l1, err := smtpDial(a + ":2526")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := net.DialTimeout("tcp", a+":2526", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c2.Read(make([]byte, 100)); err == nil {
		t.Fatalf("a client beyond the process limit got %d bytes", n)
	}
	l1.cmd("QUIT")
	l1.c.Close()
	c2.SetReadDeadline(time.Now().Add(labDeadline))
	if banner, err := bufio.NewReader(c2).ReadString('\n'); err != nil || !strings.HasPrefix(banner, "220 ") {
		t.Fatalf("the waiting client: %q, %v", banner, err)
	}

	// postconf -e, a service taken out of master.cf, postfix reload.
	mcf := inst.ConfigDir + "/master.cf"
	if err := os.WriteFile(mcf, []byte(strings.Replace(mustRead(t, mcf), limited, "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []*exec.Cmd{
		inst.Command("postconf", "-e", "myhostname = vm3.example.ops", "inet_interfaces = "+b),
		inst.Command("postfix", "reload"),
	} {
		if res := oracle.Run(cmd, ""); res.Code != 0 {
			t.Fatalf("%v: %+v", cmd.Args, res)
		}
	}
	listenWait(t, "smtpd on "+b+":25", func() bool {
		s, err := smtpDial(b + ":25")
		if err != nil {
			return false
		}
		s.c.Close()
		if !strings.HasPrefix(s.banner, "220 vm3.example.ops ESMTP") {
			t.Fatalf("new session after reload: %q", s.banner)
		}
		return true
	})
	for _, addr := range []string{a + ":25", a + ":2526"} {
		listenWait(t, addr+" to stop listening", func() bool {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
	}
	// The session opened before the reload goes on.
	if reply, err := s1.cmd("NOOP"); err != nil || !strings.HasPrefix(reply, "250 ") {
		t.Errorf("session open across the reload: %q, %v", reply, err)
	}
	if reply, err := s1.cmd("QUIT"); err != nil || !strings.HasPrefix(reply, "221 ") {
		t.Errorf("session open across the reload: %q, %v", reply, err)
	}
}

func mustRead(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
