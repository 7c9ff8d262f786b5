package oracle

import (
	"bytes"
	"errors"
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
)

// Syslog is a real rsyslogd owning /dev/log, as on a CentOS machine, in a
// private mount namespace that only the test process (and what it starts)
// sees: /dev there is a tmpfs holding the host's device nodes, bound one
// by one, and the socket rsyslogd makes; the host's /dev is never written.
// rsyslogd writes mail.* to File in the traditional format of CentOS's
// /var/log/maillog.
type Syslog struct {
	Dir  string // rsyslogd's configuration, pid file and work folder
	File string // where mail.* goes
}

// envSyslogTest names the test a re-executed test binary runs inside its
// private namespace.
const envSyslogTest = "POSTDOVE_SYSLOG_TEST"

// envParentNS is the parent's mount namespace, which the child checks it
// is not in before it mounts anything.
const envParentNS = "POSTDOVE_SYSLOG_PARENT_NS"

// UnderSyslog runs the calling test again, in a child test process with a
// private mount namespace in which a real rsyslogd owns /dev/log. In the
// parent it waits for the child, reports its output and result as this
// test's, and returns nil: the caller returns at once. In the child it
// returns the running rsyslogd; pass it to PostfixOptions.Syslog.
//
//	sys := oracle.UnderSyslog(t)
//	if sys == nil {
//		return
//	}
//
// It skips (under CI, fails) without root or rsyslogd.
func UnderSyslog(t *testing.T) *Syslog {
	t.Helper()
	if os.Getenv(envSyslogTest) == t.Name() {
		return startSyslog(t)
	}
	if os.Geteuid() != 0 {
		t.Skip("a private /dev/log needs root")
	}
	if _, err := exec.LookPath("rsyslogd"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("rsyslogd is not installed (.ci/run installs rsyslog)")
		}
		t.Skip("rsyslogd is not installed")
	}
	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(run, "/"), "-test.v", "-test.count=1")
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), envSyslogTest+"="+t.Name(), envParentNS+"="+ns)
	// Go's unshare also makes every mount private to the namespace.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		// No mount namespace for this process (a container without
		// CAP_SYS_ADMIN).
		if os.Getenv("CI") != "" {
			t.Fatalf("private mount namespace: %v", err)
		}
		t.Skipf("private mount namespace: %v", err)
	}
	t.Logf("in a private mount namespace under rsyslogd:\n%s", out.String())
	switch {
	case err != nil:
		t.Errorf("%v", err)
	case strings.Contains(out.String(), "--- SKIP: "+t.Name()+" "):
		t.Skip("skipped in the namespace")
	case !strings.Contains(out.String(), "--- PASS: "+t.Name()+" "):
		t.Errorf("the test did not run in the namespace")
	}
	return nil
}

// startSyslog makes the private /dev and starts rsyslogd on it.
func startSyslog(t *testing.T) *Syslog {
	t.Helper()
	// Never mount anything in the parent's namespace.
	self, err := os.Readlink("/proc/self/ns/mnt")
	if parent := os.Getenv(envParentNS); err != nil || parent == "" || self == parent {
		t.Fatalf("not in a private mount namespace (%s %v, parent's %s)", self, err, parent)
	}
	dir, err := os.MkdirTemp("/var/tmp", "syslog-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Should hostdev still be mounted, removing it would empty the
		// host's /dev.
		if _, err := os.Lstat(filepath.Join(dir, "hostdev")); err == nil {
			t.Logf("%s/hostdev is still there: %s left in place", dir, dir)
			return
		}
		os.RemoveAll(dir)
	})
	if err := privateDev(dir); err != nil {
		if os.Getenv("CI") != "" || !errors.Is(err, syscall.EPERM) {
			t.Fatalf("private /dev: %v", err)
		}
		t.Skipf("private /dev: %v", err)
	}
	s := &Syslog{Dir: dir, File: filepath.Join(dir, "maillog")}
	conf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`# written by postdove/compat/oracle
global(workDirectory="%s")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0")
mail.* action(type="omfile" file="%s" template="RSYSLOG_TraditionalFileFormat")
`, dir, s.File)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rsyslogd", "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	// Ready once a record sent to /dev/log reaches the file.
	mark := fmt.Sprintf("postdove-syslog-ready-%d", time.Now().UnixNano())
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unixgram", "/dev/log"); err == nil {
			fmt.Fprintf(c, "<22>%s test: %s", time.Now().Format(time.Stamp), mark)
			c.Close()
		}
		time.Sleep(50 * time.Millisecond)
		if b, _ := os.ReadFile(s.File); bytes.Contains(b, []byte(mark)) {
			break
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			t.Fatalf("rsyslogd did not log to %s within 20 s:\n%s", s.File, out.String())
		}
	}
	// Tests read the mail system's lines only.
	if err := os.Truncate(s.File, 0); err != nil {
		t.Fatal(err)
	}
	return s
}

// privateDev mounts a tmpfs on /dev that holds what the host's /dev holds
// (bound, not copied) except log. It is called in a private mount
// namespace only.
func privateDev(dir string) error {
	old := filepath.Join(dir, "hostdev")
	if err := os.Mkdir(old, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("/dev", old, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind /dev: %w", err)
	}
	// From here on, hostdev is the host's /dev: it must be unmounted
	// before anything below dir is removed.
	defer func() {
		syscall.Unmount(old, syscall.MNT_DETACH)
		os.Remove(old)
	}()
	if err := syscall.Mount("tmpfs", "/dev", "tmpfs", syscall.MS_NOSUID, "mode=0755"); err != nil {
		return fmt.Errorf("tmpfs on /dev: %w", err)
	}
	ents, err := os.ReadDir(old)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		src, dst := filepath.Join(old, name), filepath.Join("/dev", name)
		fi, err := os.Lstat(src)
		if err != nil || name == "log" {
			continue
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, dst); err != nil {
				return err
			}
		case fi.IsDir():
			if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil {
				return err
			}
			if err := syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
				return fmt.Errorf("bind %s: %w", src, err)
			}
		case fi.Mode()&(os.ModeDevice|os.ModeCharDevice) != 0:
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			f.Close()
			if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind %s: %w", src, err)
			}
		}
	}
	return nil
}
