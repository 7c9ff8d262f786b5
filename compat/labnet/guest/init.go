// Package guest is what runs inside the hosts of compat/labnet: Init, the
// first process of a host's namespaces, which makes the host's private
// file system and reaps orphans, and Systemctl, the host's `systemctl`.
package guest

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Environment variables by which the harness configures Init.
const (
	EnvHostname = "LABNET_HOSTNAME" // the host's name (UTS namespace); empty for the switch
	EnvSrc      = "LABNET_SRC"      // the source tree, bound read-only on SrcDir
)

// SrcDir is where a host sees the source tree (bin/, etc/, Makefile).
const SrcDir = "/run/labnet/src"

// Private are the folders each host gets empty, on a tmpfs of its own
// (on top of private copies of /etc, /usr and /var).
var Private = []string{
	"/tmp", "/var/tmp", "/home", "/root",
	"/etc/postfix", "/etc/dovecot",
	"/var/spool/postfix", "/var/spool/mail", "/var/log",
}

// Init is the first process (pid 1) of a host's new mount, UTS, network,
// IPC and pid namespaces. It makes every mount private, names the host,
// lays out its file system, says "ready" on stdout, then reaps orphans
// until it is killed; with it go all of the host's processes and mounts.
// Without EnvHostname it is the switch's: no file system of its own.
func Init() int {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "labguest init: not the first process of a pid namespace")
		return 2
	}
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "labguest init:", err)
		return 1
	}
	fmt.Println("ready")
	if null, err := os.OpenFile("/dev/null", os.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			syscall.Dup2(int(null.Fd()), fd)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		os.Exit(0)
	}()
	for {
		if _, err := syscall.Wait4(-1, nil, 0, nil); errors.Is(err, syscall.ECHILD) {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func setup() error {
	// Nothing mounted here may reach the machine's namespace.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	name := os.Getenv(EnvHostname)
	if name == "" {
		return nil
	}
	if err := syscall.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if err := tmpfs("/run", "0755"); err != nil {
		return err
	}
	for _, d := range []string{"/run/labnet/src", "/run/labnet/ov", "/run/lock"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if src := os.Getenv(EnvSrc); src != "" {
		if err := syscall.Mount(src, SrcDir, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		if err := syscall.Mount("", SrcDir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only %s: %w", SrcDir, err)
		}
	}
	// Private copies of /etc, /usr and /var: the machine's files below,
	// the host's changes in a tmpfs above.
	if err := tmpfs("/run/labnet/ov", "0755"); err != nil {
		return err
	}
	for _, d := range []string{"/etc", "/usr", "/var"} {
		up, work := "/run/labnet/ov"+d+"/upper", "/run/labnet/ov"+d+"/work"
		if err := os.MkdirAll(up, 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(work, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount("overlay", d, "overlay", 0, "lowerdir="+d+",upperdir="+up+",workdir="+work); err != nil {
			return fmt.Errorf("overlay on %s: %w", d, err)
		}
	}
	// Debian links /var/spool/mail to /var/mail; CentOS has it the other
	// way round.
	if fi, err := os.Lstat("/var/spool/mail"); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		os.Remove("/var/spool/mail")
	}
	for _, d := range Private {
		mode := "0755"
		switch d {
		case "/tmp", "/var/tmp":
			mode = "1777"
		case "/root":
			mode = "0700"
		case "/var/spool/mail":
			mode = "0775"
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := tmpfs(d, mode); err != nil {
			return err
		}
	}
	// CentOS keeps mailboxes in /var/spool/mail, group mail, and
	// /var/mail is a link to it.
	if g, err := user.LookupGroup("mail"); err == nil {
		gid, _ := strconv.Atoi(g.Gid)
		os.Chown("/var/spool/mail", 0, gid)
	}
	os.RemoveAll("/var/mail")
	os.Symlink("spool/mail", "/var/mail")
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("proc: %w", err)
	}
	// sysfs shows the host's network devices; not every container allows it.
	syscall.Mount("sysfs", "/sys", "sysfs", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC|syscall.MS_RDONLY, "")
	return privateDev()
}

func tmpfs(dir, mode string) error {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode="+mode); err != nil {
		return fmt.Errorf("tmpfs on %s: %w", dir, err)
	}
	return nil
}

// privateDev gives the host a /dev of its own, where its rsyslogd makes
// /dev/log: a tmpfs holding the machine's basic devices, bound, a new
// devpts and shm.
func privateDev() error {
	const old = "/run/labnet/dev"
	if err := os.MkdirAll(old, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("/dev", old, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return fmt.Errorf("bind /dev: %w", err)
	}
	defer func() {
		syscall.Unmount(old, syscall.MNT_DETACH)
		os.Remove(old)
	}()
	if err := tmpfs("/dev", "0755"); err != nil {
		return err
	}
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		dst := "/dev/" + n
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if err != nil {
			return err
		}
		f.Close()
		if err := syscall.Mount(filepath.Join(old, n), dst, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", n, err)
		}
	}
	for _, d := range []string{"/dev/pts", "/dev/shm"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := syscall.Mount("devpts", "/dev/pts", "devpts", syscall.MS_NOSUID|syscall.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620"); err != nil {
		return fmt.Errorf("devpts: %w", err)
	}
	if err := tmpfs("/dev/shm", "1777"); err != nil {
		return err
	}
	for link, target := range map[string]string{
		"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	return nil
}
