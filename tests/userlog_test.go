package tests

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// userMail runs sendmail, postdrop and s-nail as an ordinary user of a lab
// mail system, the way a user does on a Postfix machine: postdrop is a
// copy installed set-gid postdrop in command_directory, and the
// instance's config folders are listed in alternate_config_directories of
// a private /etc/postfix/main.cf (an overlay on /etc in a private mount
// namespace, as in postqueue_user_test.go).
type userMail struct {
	*lab
	u       oracle.User
	cmdDir  string // command_directory: sendmail, and postdrop set-gid
	overlay string
	// noLogConf is a second config folder for the same queue whose
	// main.cf has no maillog_file: commands run with it log to syslog,
	// or to /var/log/maillog when there is no /dev/log.
	noLogConf string
}

func newUserMail(t *testing.T) *userMail {
	t.Helper()
	for _, tool := range []string{"unshare", "setpriv", "s-nail"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		t.Skip("no postdrop group")
	}
	dir, err := os.MkdirTemp("/var/tmp", "pdtusermail-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	cmdDir := filepath.Join(dir, "sbin")
	if err := os.Mkdir(cmdDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sendmail", "postdrop"} {
		src, err := os.ReadFile(oracle.Postdove(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cmdDir, name), src, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	postdrop := filepath.Join(cmdDir, "postdrop")
	if out, err := exec.Command("chgrp", "postdrop", postdrop).CombinedOutput(); err != nil {
		t.Fatalf("chgrp: %v %s", err, out)
	}
	if err := os.Chmod(postdrop, os.ModeSetgid|0o755); err != nil {
		t.Fatal(err)
	}
	l := labStart(t, "command_directory = "+cmdDir+"\n", "")
	um := &userMail{lab: l, u: l.user("pdtuser"), cmdDir: cmdDir, overlay: filepath.Join(dir, "etc-overlay"),
		noLogConf: filepath.Join(dir, "nolog")}
	if err := os.Mkdir(um.noLogConf, 0o755); err != nil {
		t.Fatal(err)
	}
	mainCF, err := os.ReadFile(filepath.Join(l.ConfigDir, "main.cf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(um.noLogConf, "main.cf"), append(mainCF, "maillog_file =\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"upper/postfix", "work"} {
		if err := os.MkdirAll(filepath.Join(um.overlay, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(um.overlay, "upper/postfix/main.cf"),
		[]byte("alternate_config_directories = "+l.ConfigDir+" "+um.noLogConf+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The lab's maillog_file is root's and not writable by the user.
	if fi, err := os.Stat(l.Maillog); err != nil || fi.Mode().Perm()&0o002 != 0 {
		t.Fatalf("maillog_file %s: %v %v", l.Maillog, fi, err)
	}
	return um
}

// run runs argv as the user with config folder conf (MAIL_CONFIG); when
// noDevLog, /dev/log is hidden from it, as on a machine without a syslog
// daemon.
func (um *userMail) run(conf string, noDevLog bool, stdin string, argv ...string) oracle.Result {
	um.t.Helper()
	script := fmt.Sprintf("mount -t overlay overlay -o lowerdir=/etc,upperdir=%s/upper,workdir=%s/work /etc",
		um.overlay, um.overlay)
	if noDevLog {
		// A regular file over the socket: there is no syslog to talk to.
		script += " && { [ ! -e /dev/log ] || mount --bind /etc/hostname /dev/log; }"
	}
	script += fmt.Sprintf(` && cd %s && exec setpriv --reuid=%d --regid=%d --clear-groups "$@"`, um.u.Home, um.u.UID, um.u.GID)
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh"}, argv...)...)
	cmd.Env = []string{"HOME=" + um.u.Home, "USER=" + um.u.Name, "LOGNAME=" + um.u.Name,
		"PATH=/usr/bin:/bin", "LANG=C", "MAIL_CONFIG=" + conf}
	res := oracle.Run(cmd, stdin)
	if strings.Contains(res.Stderr, "mount:") || strings.Contains(res.Stderr, "unshare:") {
		um.t.Skipf("no private mount namespace here: %s", res.Stderr)
	}
	return res
}

// An ordinary user's sendmail, postdrop and mail (s-nail) queue the mail
// and exit 0 when they cannot write the maillog: a root-owned
// maillog_file, or no /dev/log and no writable /var/log/maillog. They
// never print a Go panic, and s-nail leaves no dead.letter.
func TestUserCommandsWithoutMaillog(t *testing.T) {
	um := newUserMail(t)
	cmdDir := um.cmdDir
	n := 0
	for _, c := range []struct {
		what     string
		conf     string
		noDevLog bool
	}{
		{"root-owned maillog_file", um.ConfigDir, false},
		{"no /dev/log", um.noLogConf, true},
	} {
		for _, tool := range []string{"sendmail", "postdrop", "mail"} {
			n++
			subject := fmt.Sprintf("test %d: %s, %s", n, tool, c.what)
			var res oracle.Result
			switch tool {
			case "sendmail":
				res = um.run(c.conf, c.noDevLog, "Subject: "+subject+"\n\nbody\n",
					filepath.Join(cmdDir, "sendmail"), "-i", um.u.Name)
			case "postdrop":
				res = um.run(c.conf, c.noDevLog, "Subject: "+subject+"\n\nbody\n",
					filepath.Join(cmdDir, "postdrop"), "-f", um.u.Name, "--", um.u.Name)
			case "mail":
				res = um.run(c.conf, c.noDevLog, "body\n", "s-nail", "-:/", "-Sv15-compat",
					"-Smta="+filepath.Join(cmdDir, "sendmail"), "-s", subject, um.u.Name)
			}
			if res.Code != 0 || strings.Contains(res.Stderr, "panic") || strings.Contains(res.Stderr, "goroutine") {
				t.Errorf("%s: exit %d, stderr:\n%s", subject, res.Code, res.Stderr)
				continue
			}
			um.waitMbox(um.u.Name, "Subject: "+subject+"\n")
		}
	}
	if b, err := os.ReadFile(filepath.Join(um.u.Home, "dead.letter")); err == nil {
		t.Errorf("s-nail left a dead.letter:\n%s", b)
	}
}
