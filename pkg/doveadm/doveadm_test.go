package doveadm

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(append([]string{"doveadm"}, args...), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// TestPwRoundTrip: a hash doveadm pw prints verifies with -t, in every
// scheme the passwd-file documentation names; a password read from stdin
// (no terminal) is used when -p is not given.
func TestPwRoundTrip(t *testing.T) {
	for _, s := range []string{"PLAIN", "CRYPT", "MD5-CRYPT", "SHA256-CRYPT", "SHA512-CRYPT", "BLF-CRYPT", "SSHA512"} {
		out, errs, code := run(t, "", "pw", "-s", strings.ToLower(s), "-p", "pw "+s)
		h := strings.TrimSpace(out)
		if code != 0 || errs != "" || !strings.HasPrefix(h, "{"+s+"}") {
			t.Fatalf("pw -s %s: %q %q %d", s, out, errs, code)
		}
		e := &env{stdin: strings.NewReader("pw " + s + "\n"), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
		if code := e.pw([]string{"pw", "-t", h}); code != 0 || e.stdout.(*bytes.Buffer).String() != h+" (verified)\n" {
			t.Errorf("pw -t %s with the password on stdin: %d %q %q", h, code, e.stdout, e.stderr)
		}
		if _, errs, code := run(t, "", "pw", "-t", h, "-p", "other"); code != exitTempFail ||
			errs != "Fatal: reverse password verification check failed: Password mismatch\n" {
			t.Errorf("pw -t %s, wrong password: %d %q", h, code, errs)
		}
	}
}

// TestBadArguments: odd command lines get a message and a usage exit
// code, never a crash.
func TestBadArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{nil, exitUsage, "usage: doveadm"},
		{[]string{"-c"}, exitUsage, "usage: doveadm"},
		{[]string{"bogus"}, exitUsage, "Unknown command 'bogus'"},
		{[]string{"pw", "-x"}, exitUsage, "pw: invalid option -- 'x'"},
		{[]string{"pw", "-s"}, exitUsage, "pw: option requires an argument -- 's'"},
		{[]string{"pw", "-s", "nope", "-p", "x"}, exitTempFail, "Fatal: Unknown scheme: NOPE"},
		{[]string{"pw", "-r", "x", "-p", "x"}, exitTempFail, "Invalid number of rounds"},
		{[]string{"pw", "-s", "BLF-CRYPT", "-r", "99", "-p", "x"}, exitTempFail, "Fatal: "},
		{[]string{"auth"}, exitUsage, "auth <command>"},
		{[]string{"auth", "test"}, exitUsage, "doveadm auth test ["},
		{[]string{"user"}, exitUsage, "doveadm user ["},
		{[]string{"user", "-f"}, exitUsage, "user: option requires an argument -- 'f'"},
		{[]string{"-c", "/nonexistent/dovecot.conf", "user", "x"}, 89, "open(/nonexistent/dovecot.conf) failed"},
	} {
		_, errs, code := run(t, "", c.args...)
		if code != c.code || !strings.Contains(errs, c.err) {
			t.Errorf("doveadm %v: exit %d %q; want %d with %q", c.args, code, errs, c.code, c.err)
		}
	}
}

// TestAuthTestUser runs auth test and user on a passwd-file configuration.
func TestAuthTestUser(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("alice:{PLAIN}pw:1000:1000::/home/alice::userdb_mail=maildir:~/M\nproxied:::::::proxy=y host=10.1.1.1 nopassword=y\n"), 0o600)
	conf := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(conf, []byte("auth_failure_delay = 0\nmail_location = mbox:~/mail\npassdb {\n  driver = passwd-file\n  args = "+users+
		"\n}\nuserdb {\n  driver = passwd-file\n  args = "+users+"\n}\n"), 0o600)
	for _, c := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"auth", "test", "alice", "pw"}, "passdb: alice auth succeeded\nextra fields:\n  user=alice\n  \n", 0},
		{[]string{"auth", "test", "alice", "no"}, "passdb: alice auth failed\nextra fields:\n  user=alice\n", exitNoPerm},
		{[]string{"auth", "test", "proxied", "x"}, "passdb: proxied auth succeeded\nextra fields:\n  user=proxied\n  proxy\n  host=10.1.1.1\n", 0},
		{[]string{"user", "alice"}, "field\tvalue\nuid\t1000\ngid\t1000\nhome\t/home/alice\nmail\tmaildir:~/M\n", 0},
		{[]string{"user", "-f", "home", "alice"}, "/home/alice\n", 0},
		{[]string{"user", "bob"}, "field\tvalue\n\nuserdb lookup: user bob doesn't exist\n", exitNoUser},
	} {
		out, errs, code := run(t, "", append([]string{"-c", conf}, c.args...)...)
		if out != c.out || code != c.code {
			t.Errorf("doveadm %v: exit %d %q %q; want %d %q", c.args, code, out, errs, c.code, c.out)
		}
	}
}
