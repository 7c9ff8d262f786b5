package compat

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// pwSchemes are the schemes a passwd-file holds, as doveadm pw -s names
// them.
var pwSchemes = []string{"PLAIN", "CRYPT", "MD5-CRYPT", "SHA256-CRYPT", "SHA512-CRYPT", "BLF-CRYPT", "SSHA512"}

// oracleDoveadm returns a command running the oracle's doveadm with conf
// as its configuration (handed over by doveconf -e, as the oracle's
// doveadm would otherwise run /usr/bin/doveconf) and the dovecot accounts.
func oracleDoveadm(t *testing.T, o *oracle.Oracle, conf string, args ...string) *exec.Cmd {
	t.Helper()
	doveadm := filepath.Join(o.Root, "usr/bin/doveadm")
	if _, err := os.Stat(doveadm); err != nil {
		t.Skip("the oracle has no doveadm")
	}
	return oracle.WithDovecotUsers(t, o.Doveconf(append([]string{"-c", conf, "-e", doveadm}, args...)...))
}

// writeConf writes a dovecot.conf into a folder the oracle's auth process
// (running as the dovecot user) can read, and returns its path.
func writeConf(t testing.TB, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func publicTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	return dir
}

// TestDoveadmPw: hashes made by each side verify on the other, in every
// scheme, and the answers to a mismatch or an unknown scheme are the same.
func TestDoveadmPw(t *testing.T) {
	o := oracle.Get(t)
	conf := writeConf(t, publicTempDir(t), "ssl = no\n")
	ours := oracle.Postdove(t, "doveadm")
	const pw = "pässwörd 1"
	for _, s := range pwSchemes {
		theirs := oracle.Run(oracleDoveadm(t, o, conf, "pw", "-s", s, "-p", pw), "")
		mine := oracle.Run(exec.Command(ours, "-c", conf, "pw", "-s", s, "-p", pw), "")
		if theirs.Code != 0 || mine.Code != 0 {
			t.Fatalf("pw -s %s: Dovecot %+v, postdove %+v", s, theirs, mine)
		}
		th, mh := strings.TrimSpace(theirs.Stdout), strings.TrimSpace(mine.Stdout)
		if prefix := "{" + s + "}"; !strings.HasPrefix(mh, prefix) || len(mh) != len(th) {
			t.Errorf("pw -s %s: postdove %q, Dovecot %q: different shape", s, mh, th)
		}
		// Each side's hash verifies on the other.
		for _, c := range []struct {
			who  string
			cmd  *exec.Cmd
			hash string
		}{
			{"postdove", exec.Command(ours, "-c", conf, "pw", "-t", th, "-p", pw), th},
			{"Dovecot", oracleDoveadm(t, o, conf, "pw", "-t", mh, "-p", pw), mh},
		} {
			r := oracle.Run(c.cmd, "")
			if r.Code != 0 || r.Stdout != c.hash+" (verified)\n" {
				t.Errorf("%s pw -t %s: %+v", c.who, c.hash, r)
			}
		}
		// A wrong password: the same message and exit code.
		bad := oracle.Run(exec.Command(ours, "-c", conf, "pw", "-t", th, "-p", "wrong"), "")
		want := oracle.Run(oracleDoveadm(t, o, conf, "pw", "-t", th, "-p", "wrong"), "")
		if bad.Code != want.Code || bad.Stdout != want.Stdout || bad.Stderr != want.Stderr {
			t.Errorf("pw -t %s with a wrong password: postdove %+v, Dovecot %+v", s, bad, want)
		}
	}
	for _, args := range [][]string{
		{"pw", "-s", "FOO", "-p", "x"},
		{"pw", "-t", "{FOO}x", "-p", "x"},
		{"pw", "-s", "sha512-crypt", "-r", "1000", "-p", "x", "-V"},
		{"pw", "-s", "PLAIN", "-p", "x"},
		{"pw", "-x"},
	} {
		want := oracle.Run(oracleDoveadm(t, o, conf, args...), "")
		got := oracle.Run(exec.Command(ours, append([]string{"-c", conf}, args...)...), "")
		if strings.Contains(want.Stdout, "$rounds=1000$") {
			// Salts differ; the shape must not.
			if !strings.HasPrefix(got.Stdout, "{SHA512-CRYPT}$6$rounds=1000$") || !strings.HasSuffix(got.Stdout, " (verified)\n") {
				t.Errorf("%v: postdove %q, Dovecot %q", args, got.Stdout, want.Stdout)
			}
			continue
		}
		if got.Code != want.Code || got.Stdout != want.Stdout || got.Stderr != want.Stderr {
			t.Errorf("%v:\n--- postdove %+v\n--- Dovecot %+v", args, got, want)
		}
	}
}

// runLimited runs cmd with no input, and kills it if it has not finished
// after 20 seconds (a doveadm waiting for an answer that never comes).
func runLimited(t *testing.T, cmd *exec.Cmd) oracle.Result {
	t.Helper()
	timer := time.AfterFunc(20*time.Second, func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	r := oracle.Run(cmd, "")
	if r.Code == -1 || r.Code == 137 {
		t.Errorf("%v: did not finish: %+v", cmd.Args, r)
	}
	return r
}

// oracleAuthServer starts the oracle's Dovecot master (with its auth
// service only: no protocols) on conf, and stops it when the test ends.
func oracleAuthServer(t *testing.T, o *oracle.Oracle, conf, baseDir string) {
	t.Helper()
	oracleDovecotMaster(t, o, conf, baseDir, false)
}

// oracleDovecotMaster starts the oracle's Dovecot master on conf and
// waits for its auth server. With libOverlay, its processes see the
// oracle's usr/lib/dovecot at /usr/lib/dovecot (in their private mount
// namespace only), for the programs that read built-in paths there (lmtp
// opens /usr/lib/dovecot/modules whatever mail_plugin_dir says).
func oracleDovecotMaster(t testing.TB, o *oracle.Oracle, conf, baseDir string, libOverlay bool) {
	t.Helper()
	dovecot := filepath.Join(o.Root, "usr/sbin/dovecot")
	master := o.Doveconf("-c", conf, "-e", dovecot, "-c", conf, "-F")
	// The auth program also links a library kept with the stats plugin.
	lib := filepath.Join(o.Root, "usr/lib/dovecot")
	master.Env = append(master.Env, "LD_LIBRARY_PATH="+lib+":"+filepath.Join(lib, "modules/old-stats"))
	if libOverlay {
		script := `mount -t overlay overlay -o "lowerdir=/usr/lib:$1" /usr/lib && shift && exec "$@"`
		wrapped := exec.Command("sh", append([]string{"-c", script, "sh", filepath.Join(o.Root, "usr/lib")}, master.Args...)...)
		wrapped.Env = master.Env
		master = wrapped
	}
	cmd := oracle.WithDovecotUsers(t, master)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(baseDir, "auth-userdb")); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(baseDir, "..", "dovecot.log"))
	t.Fatalf("the oracle's auth server did not start:\n%s%s", out.Bytes(), log)
}

// authServerConf is a configuration for the oracle's master with every
// service's program taken from the oracle (its built-in paths point at
// /usr/lib/dovecot, where nothing is installed).
func authServerConf(o *oracle.Oracle, dir, body string) string {
	lib := filepath.Join(o.Root, "usr/lib/dovecot")
	var b strings.Builder
	fmt.Fprintf(&b, "ssl = no\nprotocols =\nbase_dir = %s/run\nlog_path = %s/dovecot.log\nauth_failure_delay = 1 secs\n"+
		"import_environment = TZ CORE_OUTOFMEM CORE_ERROR LD_LIBRARY_PATH\n", dir, dir)
	for _, s := range [][2]string{{"aggregator", "aggregator"}, {"anvil", "anvil"}, {"auth-worker", "auth -w"}, {"auth", "auth"},
		{"config", "config"}, {"dict-async", "dict"}, {"dict", "dict"}, {"director", "director"}, {"dns-client", "dns-client"},
		{"doveadm", "doveadm-server"}, {"health-check", "script -p health-check.sh"}, {"imap-hibernate", "imap-hibernate"}, {"imap-login", "imap-login"},
		{"imap-urlauth-login", "imap-urlauth-login"}, {"imap-urlauth-worker", "imap-urlauth-worker"}, {"imap-urlauth", "imap-urlauth"},
		{"imap", "imap"}, {"indexer-worker", "indexer-worker"}, {"indexer", "indexer"}, {"ipc", "ipc"}, {"log", "log"},
		{"old-stats", "old-stats"}, {"pop3-login", "pop3-login"}, {"pop3", "pop3"}, {"replicator", "replicator"}, {"stats", "stats"},
		{"tcpwrap", "tcpwrap"}} {
		fmt.Fprintf(&b, "service %s {\n  executable = %s/%s\n}\n", s[0], lib, s[1])
	}
	return b.String() + body
}

// TestDoveadmAuthUser: doveadm auth test and doveadm user through a
// passwd-file holding every scheme (hashes made by the oracle's doveadm
// pw) print what the oracle's doveadm prints against the oracle's own
// auth server, with the same exit codes; failures wait auth_failure_delay.
func TestDoveadmAuthUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the oracle's Dovecot master)")
	}
	o := oracle.Get(t)
	dir := publicTempDir(t)
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users")
	conf := writeConf(t, dir, authServerConf(o, dir, fmt.Sprintf("passdb {\n  driver = passwd-file\n  args = %s\n}\nuserdb {\n  driver = passwd-file\n  args = %s\n}\n", users, users)))
	var lines []string
	for i, s := range pwSchemes {
		r := oracle.Run(oracleDoveadm(t, o, conf, "pw", "-s", s, "-p", "pw-"+s), "")
		if r.Code != 0 {
			t.Fatalf("oracle pw -s %s: %+v", s, r)
		}
		lines = append(lines, fmt.Sprintf("u%d:%s:%d:%d::/home/u%d", i, strings.TrimSpace(r.Stdout), 2000+i, 3000+i, i))
	}
	lines = append(lines, "mailer:{PLAIN}x:1000:1000::/home/mailer::userdb_mail=maildir:~/Mail", "nohome:{PLAIN}x:1001:1001",
		"proxied:{PLAIN}x:1002:1002::/home/proxied::proxy=y host=10.1.1.1",
		"proxnp::1003:1003::/home/proxnp::proxy=y host=10.1.1.1 nopassword=y",
		"proxpw:{PLAIN}x:1004:1004::/home/proxpw::proxy=y host=10.1.1.1 nopassword=y")
	if err := os.WriteFile(users, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	oracleAuthServer(t, o, conf, filepath.Join(dir, "run"))
	ours := oracle.Postdove(t, "doveadm")
	cases := [][]string{
		{"auth", "test", "nobody", "x"},
		{"auth", "test", "mailer", "x"},
		{"auth", "test", "proxied", "x"},
		{"auth", "test", "proxnp", "anything"},
		{"auth", "test", "proxpw", "wrong"},
		{"auth", "test", "proxpw", "x"},
		{"user", "u1"},
		{"user", "mailer"},
		{"user", "nohome"},
		{"user", "u0", "u2"},
		{"user", "-f", "home", "u3"},
		{"user", "nobody"},
		{"user", "-f", "uid", "nobody"},
		{"auth", "test"},
		{"user"},
	}
	for i, s := range pwSchemes {
		u := fmt.Sprintf("u%d", i)
		cases = append(cases, []string{"auth", "test", u, "pw-" + s}, []string{"auth", "test", u, "wrong"})
	}
	for _, args := range cases {
		want := runLimited(t, oracleDoveadm(t, o, conf, args...))
		start := time.Now()
		got := runLimited(t, exec.Command(ours, append([]string{"-c", conf}, args...)...))
		if took := time.Since(start); got.Code == 77 && took < time.Second {
			t.Errorf("doveadm %s: failure answered after %v, before auth_failure_delay (1 secs)", strings.Join(args, " "), took)
		}
		if got.Code != want.Code || got.Stdout != want.Stdout ||
			strings.Join(oracle.StderrShape(got.Stderr), "\n") != strings.Join(oracle.StderrShape(want.Stderr), "\n") {
			t.Errorf("doveadm %s:\n--- postdove (exit %d)\n%s%s--- Dovecot (exit %d)\n%s%s", strings.Join(args, " "),
				got.Code, got.Stdout, got.Stderr, want.Code, want.Stdout, want.Stderr)
		}
	}
}

// TestDoveadmSystemUser: a real account, its password set by chpasswd
// (yescrypt, Debian's default, and SHA-512, CentOS 7's), through passdb
// shadow or pam (service dovecot, as the machine has it) and userdb passwd: doveadm auth test and doveadm user print what
// the oracle's do.
func TestDoveadmSystemUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (useradd, /etc/shadow, the oracle's Dovecot master)")
	}
	o := oracle.Get(t)
	name := fmt.Sprintf("pdadm%d", os.Getpid())
	if out, err := exec.Command("useradd", "-M", "-d", "/home/"+name, "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	ours := oracle.Postdove(t, "doveadm")
	for _, c := range []struct{ method, passdb string }{{"YESCRYPT", "shadow"}, {"SHA512", "shadow"}, {"YESCRYPT", "pam"}} {
		method := c.method
		cmd := exec.Command("chpasswd", "-c", method)
		cmd.Stdin = strings.NewReader(name + ":word " + method + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("chpasswd: %v: %s", err, out)
		}
		// A fresh oracle server each time: its namespace's view of /etc
		// is taken when it starts.
		dir := publicTempDir(t)
		if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
			t.Fatal(err)
		}
		conf := writeConf(t, dir, authServerConf(o, dir, "passdb {\n  driver = "+c.passdb+"\n}\nuserdb {\n  driver = passwd\n}\n"))
		oracleAuthServer(t, o, conf, filepath.Join(dir, "run"))
		for _, args := range [][]string{
			{"auth", "test", name, "word " + method},
			{"auth", "test", name, "Word " + method},
			{"user", name},
			{"user", name + "x"},
		} {
			want := runLimited(t, oracleDoveadm(t, o, conf, args...))
			got := runLimited(t, exec.Command(ours, append([]string{"-c", conf}, args...)...))
			if got.Code != want.Code || got.Stdout != want.Stdout {
				t.Errorf("%s %s: doveadm %s:\n--- postdove (exit %d)\n%q%s--- Dovecot (exit %d)\n%q%s", c.passdb, method, strings.Join(args, " "),
					got.Code, got.Stdout, got.Stderr, want.Code, want.Stdout, want.Stderr)
			}
		}
	}
}
