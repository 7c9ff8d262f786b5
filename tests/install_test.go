package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// installRepo is the repository root (where the Makefile is).
func installRepo() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

// installRun runs make install with the given variables and returns its output.
func installRun(t *testing.T, vars ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-s", "install"}, vars...)...)
	cmd.Dir = installRepo()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make install %v: %v\n%s", vars, err, out)
	}
	return string(out)
}

func installMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("not installed: %v", err)
	}
	return st.Mode()
}

func TestInstallLayout(t *testing.T) {
	oracle.Postdove(t, "postfix") // builds bin/
	dest := t.TempDir()
	out := installRun(t, "DESTDIR="+dest)
	bin := filepath.Join(installRepo(), "bin")
	where := map[string]string{
		"postfix": "usr/sbin", "postconf": "usr/sbin", "postmap": "usr/sbin", "postalias": "usr/sbin",
		"postqueue": "usr/sbin", "postsuper": "usr/sbin", "sendmail": "usr/sbin", "postdrop": "usr/sbin",
		"dovecot": "usr/sbin", "doveconf": "usr/bin", "doveadm": "usr/bin", "dovecot-lda": "usr/libexec/dovecot",
	}
	for name, dir := range where {
		path := filepath.Join(dest, dir, name)
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			if _, err := os.Lstat(path); err == nil {
				t.Errorf("%s installed although it was not built", path)
			}
			continue
		}
		if m := installMode(t, path); m.Perm() != 0o755 || !m.IsRegular() {
			t.Errorf("%s: mode %v, want -rwxr-xr-x", path, m)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/sbin/postfix")); err != nil {
		t.Errorf("postfix not installed in /usr/sbin: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bin, "sendmail")); err == nil {
		for _, l := range []string{"newaliases", "mailq"} {
			target, err := os.Readlink(filepath.Join(dest, "usr/bin", l))
			if err != nil || target != "../sbin/sendmail" {
				t.Errorf("/usr/bin/%s: link %q (%v), want ../sbin/sendmail", l, target, err)
			}
		}
	}
	configs := map[string]string{
		"etc/postfix/main.cf":                     "etc/postfix/main.cf",
		"etc/postfix/master.cf":                   "etc/postfix/master.cf",
		"etc/postfix/access":                      "etc/postfix/access",
		"etc/aliases":                             "etc/aliases",
		"etc/dovecot/dovecot.conf":                "etc/dovecot/dovecot.conf",
		"etc/dovecot/conf.d/10-mail.conf":         "etc/dovecot/conf.d/10-mail.conf",
		"etc/dovecot/conf.d/auth-system.conf.ext": "etc/dovecot/conf.d/auth-system.conf.ext",
		"etc/systemd/postfix.service":             "usr/lib/systemd/system/postfix.service",
		"etc/systemd/dovecot.service":             "usr/lib/systemd/system/dovecot.service",
	}
	for src, dst := range configs {
		want, err := os.ReadFile(filepath.Join(installRepo(), src))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dest, dst))
		if err != nil || string(got) != string(want) {
			t.Errorf("/%s: not the stock %s (%v)", dst, src, err)
			continue
		}
		if m := installMode(t, filepath.Join(dest, dst)); m.Perm() != 0o644 {
			t.Errorf("/%s: mode %v, want 0644", dst, m)
		}
	}
	if !strings.Contains(out, "installed /usr/sbin/postfix") {
		t.Errorf("make install did not say what it installed:\n%s", out)
	}

	// A second install keeps the administrator's edits.
	mainCf := filepath.Join(dest, "etc/postfix/main.cf")
	edited := "myorigin = $mydomain\n"
	if err := os.WriteFile(mainCf, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dest, "etc/postfix/access")); err != nil {
		t.Fatal(err)
	}
	out = installRun(t, "DESTDIR="+dest)
	if got, _ := os.ReadFile(mainCf); string(got) != edited {
		t.Errorf("second make install overwrote main.cf: %q", got)
	}
	if !strings.Contains(out, "kept existing "+mainCf) {
		t.Errorf("second make install did not report keeping main.cf:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dest, "etc/postfix/access")); err != nil {
		t.Errorf("a removed stock file was not reinstalled: %v", err)
	}
}

func TestInstallPrefix(t *testing.T) {
	oracle.Postdove(t, "postfix")
	dest := t.TempDir()
	installRun(t, "DESTDIR="+dest, "PREFIX=/opt/pd", "SYSCONFDIR=/opt/pd/etc")
	for _, p := range []string{"opt/pd/sbin/postfix", "opt/pd/etc/postfix/main.cf", "opt/pd/lib/systemd/system/postfix.service"} {
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("PREFIX not honoured: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "usr")); err == nil {
		t.Errorf("PREFIX=/opt/pd still installed under /usr")
	}
}

// The stock main.cf and master.cf are read by the real Postfix without a
// complaint and give CentOS 7's settings and services.
func TestStockPostfixConfigOracle(t *testing.T) {
	o := oracle.Get(t)
	dir := t.TempDir()
	for _, f := range []string{"main.cf", "master.cf"} {
		b, err := os.ReadFile(filepath.Join(installRepo(), "etc/postfix", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := oracle.Run(o.Command("postconf", "-c", dir, "-n"), "")
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("postconf -n: %d %s", res.Code, res.Stderr)
	}
	for _, want := range []string{
		"inet_interfaces = localhost", "inet_protocols = all",
		"mydestination = $myhostname, localhost.$mydomain, localhost",
		"alias_maps = hash:/etc/aliases", "mail_owner = postfix", "setgid_group = postdrop",
		"unknown_local_recipient_reject_code = 550", "sendmail_path = /usr/sbin/sendmail",
	} {
		if !strings.Contains(res.Stdout, want+"\n") {
			t.Errorf("postconf -n lacks %q:\n%s", want, res.Stdout)
		}
	}
	if strings.Contains(res.Stdout, "compatibility_level") {
		t.Errorf("stock main.cf sets compatibility_level; CentOS 7's does not")
	}
	res = oracle.Run(o.Command("postconf", "-c", dir, "-M"), "")
	if res.Code != 0 || res.Stderr != "" {
		t.Fatalf("postconf -M: %d %s", res.Code, res.Stderr)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		names = append(names, strings.Fields(l)[0])
	}
	want := "smtp pickup cleanup qmgr tlsmgr rewrite bounce defer trace verify flush proxymap proxywrite smtp relay showq error retry discard local virtual lmtp anvil scache"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("master.cf services:\n got %s\nwant %s", got, want)
	}
}

// The stock dovecot.conf and conf.d parse with the real doveconf.
func TestStockDovecotConfigOracle(t *testing.T) {
	o := oracle.Get(t)
	dir := filepath.Join(t.TempDir(), "dovecot")
	if err := exec.Command("cp", "-r", filepath.Join(installRepo(), "etc/dovecot"), dir).Run(); err != nil {
		t.Fatal(err)
	}
	// The build machine has no dovecot/dovenull accounts; local.conf is
	// the stock hook for local changes.
	local := "default_login_user = nobody\ndefault_internal_user = nobody\n"
	if err := os.WriteFile(filepath.Join(dir, "local.conf"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	res := oracle.Run(o.Command("doveconf", "-c", filepath.Join(dir, "dovecot.conf"), "-n"), "")
	if res.Code != 0 {
		t.Fatalf("doveconf -n: %d %s", res.Code, res.Stderr)
	}
	for _, want := range []string{"ssl = required", "ssl_cert = </etc/pki/dovecot/certs/dovecot.pem", "driver = pam", "driver = passwd", "inbox = yes"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("doveconf -n lacks %q:\n%s", want, res.Stdout)
		}
	}
}

// TestInstallOverPostfix: make install over a CentOS 7 Postfix replaces
// every command postdove provides (the alternatives' sendmail.postfix,
// mailq.postfix and newaliases.postfix become links to postdove's
// sendmail) and lists the Postfix programs it leaves in place.
func TestInstallOverPostfix(t *testing.T) {
	oracle.Postdove(t, "postfix")
	dest := t.TempDir()
	old := "#!/bin/sh\necho Postfix\n"
	for _, p := range []string{"usr/sbin/postcat", "usr/sbin/postlock", "usr/sbin/postmulti", "usr/sbin/smtp-sink", "usr/sbin/qshape",
		"usr/sbin/sendmail.postfix", "usr/bin/mailq.postfix", "usr/bin/newaliases.postfix", "usr/bin/rmail.postfix",
		"usr/libexec/postfix/qmgr"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dest, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dest, p), []byte(old), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// CentOS 7: /usr/sbin/sendmail -> /etc/alternatives/mta.
	if err := os.Symlink("/etc/alternatives/mta", filepath.Join(dest, "usr/sbin/sendmail")); err != nil {
		t.Fatal(err)
	}
	out := installRun(t, "DESTDIR="+dest)
	bin := filepath.Join(installRepo(), "bin")
	for _, c := range []string{"postcat", "postlock", "postmulti", "postkick", "postlog", "sendmail"} {
		want, _ := os.ReadFile(filepath.Join(bin, c))
		got, err := os.ReadFile(filepath.Join(dest, "usr/sbin", c))
		if err != nil || len(want) == 0 || string(got) != string(want) {
			t.Errorf("/usr/sbin/%s is not postdove's (%v)", c, err)
		}
	}
	for link, want := range map[string]string{"usr/sbin/sendmail.postfix": "sendmail", "usr/bin/mailq.postfix": "../sbin/sendmail", "usr/bin/newaliases.postfix": "../sbin/sendmail"} {
		if got, err := os.Readlink(filepath.Join(dest, link)); err != nil || got != want {
			t.Errorf("/%s: link %q (%v), want %q", link, got, err, want)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "usr/sbin/smtp-sink")); string(got) != old {
		t.Errorf("smtp-sink, which postdove does not provide, was touched")
	}
	want := "left in place (Postfix's, not provided by postdove): /usr/bin/rmail.postfix /usr/sbin/qshape /usr/sbin/smtp-sink /usr/libexec/postfix/*\n"
	if !strings.Contains(out, want) {
		t.Errorf("make install output lacks %q:\n%s", want, out)
	}
}
