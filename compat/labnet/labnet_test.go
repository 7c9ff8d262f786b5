package labnet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLab checks the lab itself: DNS from named on host, each host's
// name, files, users and network of its own, systemctl and rsyslogd, and
// that nothing of it is left afterwards.
func TestLab(t *testing.T) {
	requirements(t)
	netnsBefore := netnsList(t)
	mountsBefore := mounts(t)
	var nets []string // the hosts' network namespaces
	ok := t.Run("up", func(t *testing.T) {
		lab := New(t)
		for _, h := range append([]*Host{lab.sw}, lab.order()...) {
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", h.PID()))
			if err != nil {
				t.Fatal(err)
			}
			nets = append(nets, ns)
		}
		vm2, vm3 := lab.Host("vm2"), lab.Host("vm3")

		t.Run("dns", func(t *testing.T) {
			mx := "dig +short MX " + Domain + " @host"
			if out := vm2.Must(t, mx); out != "" {
				t.Errorf("MX %s before the record: %q", Domain, out)
			}
			lab.AddRecord(t, Domain, "@ IN MX 10 vm3")
			if out := vm2.Must(t, mx); out != "10 vm3."+Domain+".\n" {
				t.Errorf("%s: %q, want vm3", mx, out)
			}
			if out := vm2.Must(t, "dig +short vm3."+Domain); out != lab.Addr("vm3")+"\n" {
				t.Errorf("vm3's address: %q", out)
			}
			if out := lab.Host("ext").Must(t, "dig +short -x "+lab.Addr("vm2")); out != "vm2."+Domain+".\n" {
				t.Errorf("ext: vm2's name by its address: %q", out)
			}
			if out := vm3.Must(t, "dig +short MX "+ExtDomain); out != "10 mx."+ExtDomain+".\n" {
				t.Errorf("MX %s: %q", ExtDomain, out)
			}
			lab.RestartNamed(t)
			lab.RemoveRecord(t, Domain, "@ IN MX 10 vm3")
			if out := vm2.Must(t, mx); out != "" {
				t.Errorf("MX %s after removing the record: %q", Domain, out)
			}
		})

		t.Run("hostname", func(t *testing.T) {
			for _, h := range lab.order() {
				if out := h.Must(t, "hostname"); out != h.FQDN+"\n" {
					t.Errorf("%s: hostname %q, want %s", h.Name, out, h.FQDN)
				}
			}
			if out := vm2.Must(t, "postconf -h myhostname mydomain"); out != "vm2."+Domain+"\n"+Domain+"\n" {
				t.Errorf("vm2: myhostname, mydomain = %q", out)
			}
			if me, _ := os.Hostname(); me == "vm2."+Domain {
				t.Errorf("the machine's hostname changed")
			}
		})

		t.Run("files", func(t *testing.T) {
			const probe = "/etc/postfix/labnet-probe"
			if err := vm2.WriteFile(probe, "vm2 only\n", 0o644); err != nil {
				t.Fatal(err)
			}
			if out := vm2.Must(t, "cat "+probe); out != "vm2 only\n" {
				t.Errorf("vm2 reads %q", out)
			}
			if r := vm3.Run("cat " + probe); r.Code == 0 {
				t.Errorf("vm3 sees vm2's %s", probe)
			}
			if _, err := os.Stat(probe); err == nil {
				t.Errorf("the machine sees vm2's %s", probe)
			}
			vm2.Must(t, "useradd -m labnetprobe && sed -i 's/^#myorigin = \\$myhostname/myorigin = $myhostname/' /etc/postfix/main.cf")
			if r := vm3.Run("id labnetprobe"); r.Code == 0 {
				t.Errorf("vm3 has vm2's user: %s", r.Stdout)
			}
			if out, err := exec.Command("getent", "passwd", "labnetprobe").Output(); err == nil {
				t.Errorf("the machine has vm2's user: %s", out)
			}
			if _, err := os.Stat("/home/labnetprobe"); err == nil {
				t.Errorf("the machine has vm2's /home/labnetprobe")
			}
			if b, err := vm3.ReadFile("/etc/postfix/main.cf"); err != nil || strings.Contains(string(b), "\nmyorigin = $myhostname") {
				t.Errorf("vm3's main.cf has vm2's edit (%v)", err)
			}
		})

		t.Run("network", func(t *testing.T) {
			vm2.Must(t, "ping -c1 -W5 vm3")
			lab.Host("ext").Must(t, "ping -c1 -W5 "+lab.Addr("vm2")) // through host
			var got SafeBuffer
			listen := vm3.Start(t, "nc -l 2525", &got)
			vm2.Must(t, "for i in 1 2 3 4 5 6 7 8 9 10; do echo over-the-bridge | nc -N vm3 2525 && exit 0; sleep 0.1; done; exit 1")
			listen.Wait()
			if got.String() != "over-the-bridge\n" {
				t.Errorf("vm3's nc got %q", got.String())
			}
			// No route out of the lab: host, the router, knows only
			// the lab's two subnets, and no host has a link but its own.
			routes := lab.Host("host").Must(t, "ip -4 route")
			if strings.Contains(routes, "default") || strings.Count(routes, "\n") != 2 {
				t.Errorf("host's routes:\n%s", routes)
			}
			if r := lab.Host("host").Run("ip route get 203.0.113.1"); r.Code == 0 {
				t.Errorf("host has a route to the outside: %s", r.Stdout)
			}
			for _, h := range lab.order() {
				links := h.Must(t, "ip -o link | awk -F': ' '{print $2}'")
				for _, l := range strings.Fields(links) {
					if l != "lo" && !strings.HasPrefix(l, "eth") {
						t.Errorf("%s has link %s", h.Name, l)
					}
				}
			}
			links := lab.sw.netRun("ip -o link show | awk -F': ' '{print $2}'").Stdout
			for _, l := range strings.Fields(links) {
				l, _, _ = strings.Cut(l, "@")
				if l != "lo" && !strings.HasPrefix(l, "br-") && !slices.ContainsFunc(lab.order(), func(h *Host) bool { return strings.HasPrefix(l, h.Name+"-") }) {
					t.Errorf("the switch has link %s", l)
				}
			}
		})

		t.Run("systemctl", func(t *testing.T) {
			if r := vm2.Run("systemctl is-active postfix"); r.Code != 3 || r.Stdout != "inactive\n" {
				t.Errorf("is-active before start: %d %q", r.Code, r.Stdout)
			}
			vm2.Must(t, "systemctl start postfix")
			if r := vm2.Run("systemctl is-active postfix"); r.Code != 0 || r.Stdout != "active\n" {
				t.Errorf("is-active after start: %d %q", r.Code, r.Stdout)
			}
			st := vm2.Must(t, "systemctl status postfix")
			if !strings.Contains(st, "Active: active (running)") || !strings.Contains(st, "/usr/lib/systemd/system/postfix.service") {
				t.Errorf("status:\n%s", st)
			}
			vm2.WaitLog(t, "vm2 postfix/master[", "daemon started")
			if b, _ := vm3.ReadFile("/var/log/maillog"); len(b) > 0 {
				t.Errorf("vm3's maillog has vm2's lines:\n%s", b)
			}
			if b, _ := os.ReadFile("/var/log/maillog"); strings.Contains(string(b), "vm2 postfix") {
				t.Errorf("the machine's /var/log/maillog has vm2's lines")
			}
			vm2.Must(t, "systemctl reload postfix")
			vm2.WaitLog(t, "vm2 postfix/master[", "reload")
			if r := vm2.Run("systemctl is-enabled postfix"); r.Code != 1 || r.Stdout != "disabled\n" {
				t.Errorf("is-enabled: %d %q", r.Code, r.Stdout)
			}
			vm2.Must(t, "systemctl enable postfix")
			if r := vm2.Run("systemctl is-enabled postfix"); r.Code != 0 || r.Stdout != "enabled\n" {
				t.Errorf("is-enabled after enable: %d %q", r.Code, r.Stdout)
			}
			vm2.Must(t, "systemctl restart postfix")
			pid := strings.TrimSpace(vm2.Must(t, "cat /var/spool/postfix/pid/master.pid"))
			if !strings.Contains(vm2.Must(t, "systemctl status postfix"), "Main PID: "+pid+" ") {
				t.Errorf("status does not show master.pid's %s", pid)
			}
			vm2.Must(t, "systemctl stop postfix")
			if r := vm2.Run("systemctl status postfix"); r.Code != 3 || !strings.Contains(r.Stdout, "Active: inactive (dead)") {
				t.Errorf("status after stop: %d\n%s", r.Code, r.Stdout)
			}
			if r := vm2.Run("kill -0 " + pid); r.Code == 0 {
				t.Errorf("the master %s runs after stop", pid)
			}
			if r := vm2.Run("systemctl start nosuch"); r.Code != 5 || r.Stderr != "Failed to start nosuch.service: Unit nosuch.service not found.\n" {
				t.Errorf("start of an unknown unit: %d %q", r.Code, r.Stderr)
			}
			// A main.cf postfix check rejects fails the start, as the
			// unit's ExecStartPre makes it, and status shows why.
			vm2.Must(t, "echo 'this is not a setting' >> /etc/postfix/main.cf")
			if r := vm2.Run("systemctl start postfix"); r.Code != 1 || !strings.Contains(r.Stderr, "Job for postfix.service failed") {
				t.Errorf("start with a bad main.cf: %d %q", r.Code, r.Stderr)
			}
			if r := vm2.Run("systemctl status postfix"); r.Code != 3 || !strings.Contains(r.Stdout, "Active: failed") || !strings.Contains(r.Stdout, "missing '=' after attribute name") {
				t.Errorf("status after a failed start: %d\n%s", r.Code, r.Stdout)
			}
			if r := vm2.Run("systemctl is-active postfix"); r.Code != 3 || r.Stdout != "failed\n" {
				t.Errorf("is-active after a failed start: %d %q", r.Code, r.Stdout)
			}
		})
	})
	if !ok {
		return
	}
	// Nothing is left: no namespace, mount or process.
	if after := netnsList(t); after != netnsBefore {
		t.Errorf("ip netns list changed:\n%s\nafter:\n%s", netnsBefore, after)
	}
	if after := mounts(t); !slices.Equal(after, mountsBefore) {
		t.Errorf("mounts changed:\n%s\nafter:\n%s", strings.Join(mountsBefore, "\n"), strings.Join(after, "\n"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := inNamespaces(nets)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left in the lab's namespaces: %v", left)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func netnsList(t *testing.T) string {
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v %s", err, out)
	}
	return string(out)
}

// mounts are the machine's mount points (this process's namespace).
func mounts(t *testing.T) []string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var m []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		m = append(m, f[1]+" "+f[2])
	}
	slices.Sort(m)
	return m
}

// inNamespaces lists the processes in any of the network namespaces nets.
func inNamespaces(nets []string) []string {
	var left []string
	ds, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, d := range ds {
		if ns, err := os.Readlink(d); err == nil && slices.Contains(nets, ns) {
			comm, _ := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(d)), "comm"))
			left = append(left, filepath.Base(filepath.Dir(filepath.Dir(d)))+" "+strings.TrimSpace(string(comm)))
		}
	}
	return left
}

// TestSinkThroughRouter sends with swaks from vm2 to ext's smtp-sink,
// found by its name in named, through host as the router.
func TestSinkThroughRouter(t *testing.T) {
	lab := New(t)
	sink := lab.Host("ext").StartSink(t)
	lab.Host("vm2").Must(t, "swaks -S --to root@"+ExtDomain+" --from root@vm2."+Domain+" --server mx."+ExtDomain+" --helo vm2."+Domain+" --body through-the-router")
	m := sink.Wait(t, "through-the-router")
	for _, want := range []string{"X-Client-Addr: " + lab.Addr("vm2"), "root@" + ExtDomain} {
		if !strings.Contains(m, want) {
			t.Errorf("the sink's message lacks %q:\n%s", want, m)
		}
	}
}

// BenchmarkLabUp measures building the lab (named answering, rsyslogd
// logging, postdove installed on three hosts) and tearing it down.
func BenchmarkLabUp(b *testing.B) {
	for i := 0; i < b.N; i++ {
		New(b).Close()
	}
}
