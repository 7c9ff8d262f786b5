// Package labnet builds the lab network of the course on one machine, for
// scenario tests: the hosts `host` (the lab's DNS server, a real BIND
// named, and the router to the outside), `vm2` and `vm3` on the lab
// subnet, and `ext`, an outside mail server on a second subnet reached
// through host. Each host is a set of namespaces of its own (network,
// UTS, mount, IPC, pid) with private /etc, /usr, /var (overlays of the
// machine's), /home, /root, /tmp, /dev and /run, its own rsyslogd writing
// /var/log/maillog, postdove installed at the real paths by `make
// install`, and a systemctl (compat/labnet/guest) that runs the units of
// etc/systemd.
//
// The hosts' links are veth pairs to two bridges in one more network
// namespace, the switch; none of these namespaces has a link to the
// machine's network, so nothing leaves them. Everything is torn down when
// the test ends, failed or not: killing the first process of a pid
// namespace kills all of it, and with the last process go its mounts and
// network namespace. The first processes also die with the test process
// (Pdeathsig).
//
//	lab := labnet.New(t)
//	vm2 := lab.Host("vm2")
//	vm2.Must("postconf -e inet_interfaces=all && systemctl restart postfix")
//	lab.AddRecord("example.ops", "@ IN MX 10 vm3")
package labnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postdove/compat/labnet/guest"
	"postdove/compat/oracle"
)

// The lab's addresses. They exist only inside the lab's namespaces.
const (
	LabPrefix = "192.168.77" // the lab subnet, 192.168.77.0/24: host .1, vm2 .2, vm3 .3
	ExtPrefix = "172.30.77"  // the outside subnet, 172.30.77.0/24: host .1, ext .2
	LabSubnet = LabPrefix + ".0/24"
	ExtSubnet = ExtPrefix + ".0/24"
)

// Domain is the lab's DOMAIN, ExtDomain the outside mail domain.
const (
	Domain    = "example.ops"
	ExtDomain = "ext.test"
)

// Lab is one running lab network.
type Lab struct {
	t     testing.TB
	src   string // the source tree
	sw    *Host  // the switch: two bridges, no file system of its own
	hosts map[string]*Host
	zones map[string]*zone

	mu     sync.Mutex
	serial int
}

// Host is one machine of the lab.
type Host struct {
	lab   *Lab
	Name  string   // vm2
	FQDN  string   // vm2.example.ops, its hostname
	Addrs []string // its addresses, eth0 first
	cmd   *exec.Cmd
	pid   int // its first process, as the machine sees it
}

type hostSpec struct {
	name, fqdn string
	addrs      []string // one per interface: eth0 on the lab bridge, ...
	bridges    []string
	gateway    string
	resolver   string
}

var specs = []hostSpec{
	{"host", "host." + Domain, []string{LabPrefix + ".1", ExtPrefix + ".1"}, []string{"br-lab", "br-ext"}, "", "127.0.0.1"},
	{"vm2", "vm2." + Domain, []string{LabPrefix + ".2"}, []string{"br-lab"}, LabPrefix + ".1", LabPrefix + ".1"},
	{"vm3", "vm3." + Domain, []string{LabPrefix + ".3"}, []string{"br-lab"}, LabPrefix + ".1", LabPrefix + ".1"},
	{"ext", "mx." + ExtDomain, []string{ExtPrefix + ".2"}, []string{"br-ext"}, ExtPrefix + ".1", ExtPrefix + ".1"},
}

// mailHosts get postdove installed, and run it on `systemctl start postfix`.
var mailHosts = []string{"vm2", "vm3", "ext"}

// Result is how one command ended.
type Result struct {
	Stdout, Stderr string
	Code           int // -1: did not run, or killed at the time limit
}

// New builds the lab and tears it down when t ends. It needs root, ip,
// nsenter, named and rsyslogd; without them the test is skipped (under
// CI, failed).
func New(t testing.TB) *Lab {
	t.Helper()
	requirements(t)
	l := &Lab{t: t, src: repoRoot(), hosts: map[string]*Host{}, zones: defaultZones()}
	oracle.Postdove(t, "postfix") // make build
	g := labguest(t)
	start := time.Now()

	l.sw = l.startInit(t, g, hostSpec{name: "switch"})
	for _, s := range specs {
		h := l.startInit(t, g, s)
		h.FQDN, h.Addrs = s.fqdn, s.addrs
		l.hosts[s.name] = h
	}
	l.network(t)

	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	for i, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.prepare(s)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab up in %v", time.Since(start).Round(time.Millisecond))
	return l
}

func requirements(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the lab network needs root")
	}
	for _, c := range []string{"ip", "nsenter", "named", "rndc", "dig", "rsyslogd", "make"} {
		if _, err := exec.LookPath(c); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (.ci/run installs bind9, bind9-dnsutils, iproute2, rsyslog)", c)
			}
			t.Skipf("%s is not installed", c)
		}
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	guestOnce sync.Once
	guestBin  []byte
	guestErr  error
)

// labguest builds compat/labnet/cmd/labguest once per test binary, keeps
// it in memory (nothing is left behind when the process ends) and writes
// it into a folder of t's.
func labguest(t testing.TB) string {
	t.Helper()
	guestOnce.Do(func() {
		dir, err := os.MkdirTemp("", "labnet-guest-")
		if err != nil {
			guestErr = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "labguest")
		cmd := exec.Command("go", "build", "-o", path, "./compat/labnet/cmd/labguest")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			guestErr = fmt.Errorf("go build labguest: %v\n%s", err, out)
			return
		}
		guestBin, guestErr = os.ReadFile(path)
	})
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	path := filepath.Join(t.TempDir(), "labguest")
	if err := os.WriteFile(path, guestBin, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// startInit starts the first process of a host's namespaces and waits
// until it has made the host's file system.
func (l *Lab) startInit(t testing.TB, g string, s hostSpec) *Host {
	t.Helper()
	cmd := exec.Command(g, "init")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if s.fqdn != "" {
		cmd.Env = append(cmd.Env, guest.EnvHostname+"="+s.fqdn, guest.EnvSrc+"="+l.src)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC |
			syscall.CLONE_NEWNET | syscall.CLONE_NEWPID,
		Pdeathsig: syscall.SIGKILL,
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		if os.Getenv("CI") == "" && errors.Is(err, syscall.EPERM) {
			t.Skipf("namespaces: %v", err)
		}
		t.Fatalf("start %s: %v", s.name, err)
	}
	h := &Host{lab: l, Name: s.name, cmd: cmd, pid: cmd.Process.Pid}
	t.Cleanup(h.kill)
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Wait()
		// A container may refuse overlays or mounts: not a failure of
		// the code under test, but under CI the lab must run.
		if os.Getenv("CI") == "" && strings.Contains(stderr.String(), "operation not permitted") {
			t.Skipf("%s: %s", s.name, stderr.String())
		}
		t.Fatalf("%s did not start: %s", s.name, stderr.String())
	}
	return h
}

// Close tears the lab down now rather than when the test ends.
func (l *Lab) Close() {
	hs := l.order()
	for i := len(hs) - 1; i >= 0; i-- {
		hs[i].kill()
	}
	l.sw.kill()
}

// kill ends the host: every process of its pid namespace, and so its
// mounts and network.
func (h *Host) kill() {
	if h.cmd.ProcessState != nil {
		return
	}
	if h.lab.t.Failed() && h.Name != "switch" {
		if b, err := h.ReadFile("/var/log/maillog"); err == nil && len(b) > 0 {
			h.lab.t.Logf("%s's /var/log/maillog:\n%s", h.Name, b)
		}
	}
	h.cmd.Process.Kill()
	h.cmd.Wait()
}

// network makes the bridges in the switch, links each host to them and
// gives it its addresses and routes.
func (l *Lab) network(t testing.TB) {
	t.Helper()
	var sw strings.Builder
	sw.WriteString("set -e\nip link set lo up\n")
	for _, br := range []string{"br-lab", "br-ext"} {
		fmt.Fprintf(&sw, "ip link add %s type bridge\nip link set %s up\n", br, br)
	}
	for _, s := range specs {
		for i, br := range s.bridges {
			port := fmt.Sprintf("%s-%d", s.name, i)
			fmt.Fprintf(&sw, "ip link add %s type veth peer name eth%d netns %d\n", port, i, l.hosts[s.name].pid)
			fmt.Fprintf(&sw, "ip link set %s master %s up\n", port, br)
		}
	}
	if r := l.sw.netRun(sw.String()); r.Code != 0 {
		t.Fatalf("switch: %s%s", r.Stdout, r.Stderr)
	}
	for _, s := range specs {
		var b strings.Builder
		b.WriteString("set -e\nip link set lo up\n")
		for i, a := range s.addrs {
			fmt.Fprintf(&b, "ip addr add %s/24 dev eth%d\nip link set eth%d up\n", a, i, i)
		}
		if s.gateway != "" {
			fmt.Fprintf(&b, "ip route add default via %s\n", s.gateway)
		} else {
			b.WriteString("echo 1 > /proc/sys/net/ipv4/ip_forward\n")
		}
		if r := l.hosts[s.name].Run(b.String()); r.Code != 0 {
			t.Fatalf("%s: network: %s%s", s.name, r.Stdout, r.Stderr)
		}
	}
}

// prepare writes a host's identity files, installs postdove, and starts
// its rsyslogd (and on host, named).
func (l *Lab) prepare(s hostSpec) error {
	h := l.hosts[s.name]
	short, _, _ := strings.Cut(s.fqdn, ".")
	hosts := "127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n" +
		"::1         localhost localhost.localdomain localhost6 localhost6.localdomain6\n" +
		fmt.Sprintf("%s %s %s\n", s.addrs[0], s.fqdn, short)
	for path, data := range map[string]string{
		"/etc/hostname":    s.fqdn + "\n",
		"/etc/hosts":       hosts,
		"/etc/resolv.conf": "search " + Domain + "\nnameserver " + s.resolver + "\n",
		"/etc/mailname":    s.fqdn + "\n",
		"/etc/rsyslog.conf": `# written by postdove/compat/labnet: CentOS 7's mail logging
module(load="imuxsock" SysSock.RateLimit.Interval="0")
$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat
*.info;mail.none;authpriv.none;cron.none	/var/log/messages
mail.*	-/var/log/maillog
`,
	} {
		if err := h.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	if err := h.writeSystemctl(); err != nil {
		return err
	}
	if slices.Contains(mailHosts, s.name) {
		// As the package's scripts do: install, then make the queue.
		// The machine's /etc/aliases (Debian's) gives way to CentOS's.
		if r := h.Run("rm -f /etc/aliases /etc/aliases.db && make -s -C " + guest.SrcDir + " -o build install && postfix set-permissions"); r.Code != 0 {
			return fmt.Errorf("%s: make install: %s%s", s.name, r.Stdout, r.Stderr)
		}
	}
	// CentOS's mail is Heirloom mailx, which lives on as s-nail.
	if r := h.Run("if [ -x /usr/bin/s-nail ]; then ln -sfn /usr/bin/s-nail /etc/alternatives/mail && ln -sfn /usr/bin/s-nail /etc/alternatives/mailx; fi"); r.Code != 0 {
		return fmt.Errorf("%s: mail: %s", s.name, r.Stderr)
	}
	if err := h.startSyslog(); err != nil {
		return err
	}
	if s.name == "host" {
		return l.startNamed()
	}
	return nil
}

// writeSystemctl installs the stand-in as the host's systemctl.
func (h *Host) writeSystemctl() error {
	return h.WriteFile("/usr/bin/systemctl", string(guestBin), 0o755)
}

// startSyslog starts the host's rsyslogd and waits until it logs.
func (h *Host) startSyslog() error {
	if r := h.Run("rsyslogd >/run/labnet/rsyslogd.out 2>&1 </dev/null || { cat /run/labnet/rsyslogd.out; exit 1; }"); r.Code != 0 {
		return fmt.Errorf("%s: rsyslogd: %s%s", h.Name, r.Stdout, r.Stderr)
	}
	mark := fmt.Sprintf("labnet-ready-%d", time.Now().UnixNano())
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.Run("logger -p user.info " + mark)
		time.Sleep(20 * time.Millisecond)
		if b, _ := h.ReadFile("/var/log/messages"); bytes.Contains(b, []byte(mark)) {
			return nil
		}
	}
	return fmt.Errorf("%s: rsyslogd does not log to /var/log/messages", h.Name)
}

// Host is the named host: "host", "vm2", "vm3" or "ext".
func (l *Lab) Host(name string) *Host {
	h := l.hosts[name]
	if h == nil {
		l.t.Fatalf("labnet: no host %q", name)
	}
	return h
}

// order is the hosts in the order of specs.
func (l *Lab) order() []*Host {
	var hs []*Host
	for _, s := range specs {
		hs = append(hs, l.hosts[s.name])
	}
	return hs
}

// Addr is the named host's first address.
func (l *Lab) Addr(name string) string { return l.Host(name).Addrs[0] }

// PID is the host's first process as the machine sees it: nsenter -t PID.
func (h *Host) PID() int { return h.pid }

// Root is where the machine sees the host's file system. Beware that an
// absolute symbolic link below it resolves in the machine's: WriteFile
// and ReadFile do not have that problem.
func (h *Host) Root() string { return fmt.Sprintf("/proc/%d/root", h.pid) }

// WriteFile writes a file on the host, as root there would (the folder
// must exist; links resolve on the host).
func (h *Host) WriteFile(path, data string, mode os.FileMode) error {
	f, err := openInRoot(h.Root(), path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	_, err = f.WriteString(data)
	return errors.Join(err, f.Close())
}

// ReadFile reads a file of the host.
func (h *Host) ReadFile(path string) ([]byte, error) {
	f, err := openInRoot(h.Root(), path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

// env is a root login's environment on a CentOS host.
func (h *Host) env() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/root/bin:/sbin:/bin",
		"HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash", "TERM=dumb", "LANG=C",
		"HOSTNAME=" + h.FQDN, "MAIL=/var/spool/mail/root",
	}
}

// Command is script run by sh as root on the host, in all its
// namespaces, in /root, with a root login's environment.
func (h *Host) Command(script string) *exec.Cmd {
	args := []string{"-t", fmt.Sprint(h.pid), "-m", "-u", "-i", "-n", "-p", "--wd=/root", "--", "/usr/bin/env", "-i"}
	args = append(args, h.env()...)
	args = append(args, "/bin/sh", "-c", script)
	return exec.Command("nsenter", args...)
}

// Timeout bounds each Run.
const Timeout = 60 * time.Second

// Run runs script (sh -c) as root on the host and waits for it, at most
// Timeout.
func (h *Host) Run(script string) Result { return h.RunInput("", script) }

// RunInput is Run with stdin.
func (h *Host) RunInput(stdin, script string) Result {
	return run(h.Command(script), stdin)
}

// Must is Run that fails t unless script exits 0; it returns stdout.
func (h *Host) Must(t testing.TB, script string) string {
	t.Helper()
	r := h.Run(script)
	if r.Code != 0 {
		t.Fatalf("%s# %s\nexit %d\n%s%s", h.Name, script, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// Start starts script on the host in the background and returns it; it
// and its process group are killed when t ends if not before. Its output
// goes to out, which must be safe for concurrent use (a *SafeBuffer).
func (h *Host) Start(t testing.TB, script string, out io.Writer) *exec.Cmd {
	t.Helper()
	cmd := h.Command(script)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd
}

// netRun runs script in the host's network namespace only, with the
// machine's file system (the switch has none of its own).
func (h *Host) netRun(script string) Result {
	return run(exec.Command("nsenter", "-t", fmt.Sprint(h.pid), "-n", "--", "/bin/sh", "-c", script), "")
}

func run(cmd *exec.Cmd, stdin string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	// nsenter's child, and what it starts, go too.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = time.Second
	var out, errb bytes.Buffer
	c.Stdin = strings.NewReader(stdin)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		code = -1
		errb.WriteString(fmt.Sprintf("\n(killed after %v)", Timeout))
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		code = -1
		errb.WriteString(err.Error())
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// WaitLog waits up to 10 s for a line of the host's /var/log/maillog
// that contains every one of words, and returns it; it fails t (showing
// the log) if none comes.
func (h *Host) WaitLog(t testing.TB, words ...string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var b []byte
	for {
		b, _ = h.ReadFile("/var/log/maillog")
		for _, line := range strings.Split(string(b), "\n") {
			ok := true
			for _, w := range words {
				ok = ok && strings.Contains(line, w)
			}
			if ok && line != "" {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no maillog line with %q in 10 s:\n%s", h.Name, words, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SafeBuffer is a bytes.Buffer safe for concurrent use: the output of a
// command Start runs.
type SafeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SafeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SafeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
