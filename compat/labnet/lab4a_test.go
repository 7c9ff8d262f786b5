package labnet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLab4aInv2Stock replays the first half of lab 4a's Investigation 2
// on vm2 with the stock configuration: postfix started and enabled with
// systemctl, `ss -ltn` shows nothing listening for SMTP but on loopback,
// and vm3's nc to vm2's port 25 is refused. Local mail sent with `mail`
// on vm2 lands in vm2's /var/spool/mail only.
func TestLab4aInv2Stock(t *testing.T) {
	lab := New(t)
	vm2, vm3 := lab.Host("vm2"), lab.Host("vm3")

	vm2.Must(t, "systemctl start postfix && systemctl enable postfix")
	if st := vm2.Must(t, "systemctl status postfix"); !strings.Contains(st, "Active: active (running)") {
		t.Errorf("systemctl status postfix:\n%s", st)
	}
	if got := vm2.Must(t, "postconf -h inet_interfaces"); got != "localhost\n" {
		t.Errorf("stock inet_interfaces = %q", got)
	}
	ss := vm2.Must(t, "ss -ltn")
	for _, line := range strings.Split(ss, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[3], ":25") {
			continue
		}
		if !strings.HasPrefix(f[3], "127.0.0.1:") && f[3] != "[::1]:25" {
			t.Errorf("vm2 listens for SMTP beyond loopback with the stock config:\n%s", ss)
		}
	}
	if !strings.Contains(ss, "127.0.0.1:25 ") {
		t.Errorf("vm2 does not listen on 127.0.0.1:25 with the stock config:\n%s", ss)
	}
	// The lab: `nc localhost 25` answers with Postfix's banner.
	if out := vm2.Must(t, "echo QUIT | nc -w 3 localhost 25"); !strings.HasPrefix(out, "220 vm2."+Domain+" ESMTP Postfix\r\n") {
		t.Errorf("vm2's nc localhost 25: %q", out)
	}
	if r := vm3.Run("nc -v -w 3 vm2 25 </dev/null"); r.Code == 0 || !strings.Contains(r.Stderr, "refused") {
		t.Errorf("vm3's nc to vm2:25: exit %d, %q%q; want it refused", r.Code, r.Stdout, r.Stderr)
	}
	// The second half of Investigation 2: inet_interfaces = all, mydomain
	// and myorigin = $myhostname, a restart, and vm3 gets the banner.
	vm2.Must(t, "postconf -e 'inet_interfaces = all' 'mydomain = "+Domain+"' 'myorigin = $myhostname' && systemctl restart postfix")
	if out := vm3.Must(t, "echo QUIT | nc -w 3 vm2 25"); !strings.HasPrefix(out, "220 vm2."+Domain+" ESMTP Postfix\r\n") {
		t.Errorf("vm3's nc to vm2:25 after inet_interfaces = all: %q", out)
	}

	_, machineHad := os.Stat("/var/spool/mail/alice")
	vm2.Must(t, "useradd -m alice && echo hello | mail -s 'Lab4a - Local - Test1' alice")
	vm2.WaitLog(t, "to=<alice@vm2."+Domain+">", "status=sent (delivered to mailbox)")
	mbox, err := vm2.ReadFile("/var/spool/mail/alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Subject: Lab4a - Local - Test1", "root@vm2." + Domain, "\nhello\n"} {
		if !strings.Contains(string(mbox), want) {
			t.Errorf("alice's mailbox on vm2 lacks %q:\n%s", want, mbox)
		}
	}
	if out := vm2.Must(t, "su - alice -c 'mail -H'"); !strings.Contains(out, "Lab4a - Local - Test1") {
		t.Errorf("alice's mail -H on vm2: %q", out)
	}
	if _, err := vm3.ReadFile("/var/spool/mail/alice"); err == nil {
		t.Errorf("vm3 has a mailbox for vm2's alice")
	}
	if _, err := os.Stat("/var/spool/mail/alice"); err == nil && machineHad != nil {
		t.Errorf("the machine has a mailbox for vm2's alice")
	}
}

// TestStockFiles: each mail host has CentOS 7's stock files as `make
// install` puts them, not the machine's.
func TestStockFiles(t *testing.T) {
	lab := New(t)
	src := repoRoot()
	for f, stock := range map[string]string{
		"/etc/postfix/main.cf":                    "etc/postfix/main.cf",
		"/etc/postfix/master.cf":                  "etc/postfix/master.cf",
		"/etc/aliases":                            "etc/aliases",
		"/usr/lib/systemd/system/postfix.service": "etc/systemd/postfix.service",
	} {
		want, err := os.ReadFile(filepath.Join(src, stock))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"vm2", "vm3", "ext"} {
			got, err := lab.Host(name).ReadFile(f)
			if err != nil || string(got) != string(want) {
				t.Errorf("%s's %s is not the stock one (%v)", name, f, err)
			}
		}
	}
	if out := lab.Host("vm2").Must(t, "postalias -q postmaster /etc/aliases"); out != "root\n" {
		t.Errorf("vm2: postmaster is %q in aliases.db", out)
	}
}

// TestLab4aInv3 replays lab 4a's Investigation 3: with inet_interfaces =
// all, mydomain and myorigin = $myhostname on both machines, root on vm2
// mails root on vm3 and root on vm3 answers; each mail arrives in the
// other's /var/spool/mail/root, from root@vm2.DOMAIN and root@vm3.DOMAIN.
func TestLab4aInv3(t *testing.T) {
	lab := New(t)
	vm2, vm3 := lab.Host("vm2"), lab.Host("vm3")
	for _, h := range []*Host{vm2, vm3} {
		h.Must(t, "postconf -e 'inet_interfaces = all' 'mydomain = "+Domain+"' 'myorigin = $myhostname' && systemctl start postfix")
	}
	vm2.Must(t, "echo 'hello from vm2' | mail -s 'Lab4a - vm2 to vm3' root@vm3."+Domain)
	vm3.WaitLog(t, "to=<root@vm3."+Domain+">", "status=sent (delivered to mailbox)")
	vm2.WaitLog(t, "to=<root@vm3."+Domain+">", "relay=vm3."+Domain+"[", "status=sent (250 2.0.0 Ok: queued as ")
	vm3.Must(t, "echo 'hello from vm3' | mail -s 'Lab4a - vm3 to vm2' root@vm2."+Domain)
	vm2.WaitLog(t, "to=<root@vm2."+Domain+">", "status=sent (delivered to mailbox)")
	for _, c := range []struct {
		h          *Host
		from, subj string
	}{{vm3, "root@vm2." + Domain, "Lab4a - vm2 to vm3"}, {vm2, "root@vm3." + Domain, "Lab4a - vm3 to vm2"}} {
		box, err := c.h.ReadFile("/var/spool/mail/root")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"\nFrom: root <" + c.from + ">\n", "\nSubject: " + c.subj + "\n", "\nReceived: from vm"} {
			if !strings.Contains(string(box), want) {
				t.Errorf("root's mailbox lacks %q:\n%s", want, box)
			}
		}
	}
}
