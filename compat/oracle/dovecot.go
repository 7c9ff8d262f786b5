package oracle

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// dovecotUsers are the accounts CentOS's dovecot package adds; Dovecot's
// configuration check requires default_login_user and
// default_internal_user to exist.
const (
	dovecotPasswd = "dovecot:x:97:97:Dovecot IMAP server:/usr/libexec/dovecot:/sbin/nologin\n" +
		"dovenull:x:996:993:Dovecot's unauthorized user:/usr/libexec/dovecot:/sbin/nologin\n"
	dovecotGroup = "dovecot:x:97:\ndovenull:x:993:\n"
)

// WithDovecotUsers returns cmd wrapped so that it runs in a private mount
// namespace whose /etc/passwd and /etc/group also hold the dovecot and
// dovenull accounts, as on a machine with Dovecot installed. The machine's
// own files are not changed. Use it for the oracle's dovecot programs and
// for postdove's alike, so that both see the same accounts.
//
// The namespace gets an overlay on /etc rather than bind mounts on the two
// files: a file bind mount vanishes when another process (a test's useradd)
// renames a new /etc/passwd into place.
func WithDovecotUsers(t testing.TB, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare(1) is needed for a private mount namespace")
	}
	dir := t.TempDir()
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []struct{ name, extra string }{{"passwd", dovecotPasswd}, {"group", dovecotGroup}} {
		b, err := os.ReadFile(filepath.Join("/etc", f.name))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		if err := os.WriteFile(filepath.Join(upper, f.name), append(b, f.extra...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := `mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc && shift 2 && exec "$@"`
	args := append([]string{"-m", "sh", "-c", script, "sh", upper, work, cmd.Path}, cmd.Args[1:]...)
	w := exec.Command("unshare", args...)
	w.Env, w.Dir = cmd.Env, cmd.Dir
	return w
}

// Doveconf returns a command running the oracle's doveconf with args.
func (o *Oracle) Doveconf(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(o.Root, "usr/bin/doveconf"), args...)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(o.Root, "usr/lib/dovecot"))
	return cmd
}
