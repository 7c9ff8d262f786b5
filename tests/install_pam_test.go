package tests

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// TestInstallPAMService: make install puts the "dovecot" PAM service in
// /etc/pam.d: CentOS's form (password-auth), or Debian's common-* stacks
// where the machine has those and no password-auth; the Debian form, used
// as a PAM service on this machine, lets a real account log in through
// doveadm auth test with passdb pam, and refuses a wrong password.
func TestInstallPAMService(t *testing.T) {
	oracle.Postdove(t, "doveadm")
	centos := t.TempDir()
	installRun(t, "DESTDIR="+centos)
	b, err := os.ReadFile(filepath.Join(centos, "etc/pam.d/dovecot"))
	if err != nil || !strings.Contains(string(b), "auth       include      password-auth") {
		t.Fatalf("CentOS form: %v\n%s", err, b)
	}
	debian := t.TempDir()
	if err := os.MkdirAll(filepath.Join(debian, "etc/pam.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(debian, "etc/pam.d/common-auth"), nil, 0o644)
	installRun(t, "DESTDIR="+debian)
	deb, err := os.ReadFile(filepath.Join(debian, "etc/pam.d/dovecot"))
	if err != nil || strings.Contains(string(deb), "include      password-auth") || !strings.Contains(string(deb), "@include common-auth\n@include common-account\n@include common-session\n") {
		t.Fatalf("Debian form: %v\n%s", err, deb)
	}

	if os.Geteuid() != 0 {
		t.Skip("needs root to add an account and a PAM service")
	}
	if _, err := os.Stat("/etc/pam.d/common-auth"); err != nil {
		t.Skip("not a Debian-style PAM configuration")
	}
	user := fmt.Sprintf("pdpam%d", os.Getpid())
	if out, err := exec.Command("useradd", "-M", "-d", "/home/"+user, "-s", "/usr/sbin/nologin", user).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", user).Run() })
	chpasswd := exec.Command("chpasswd")
	chpasswd.Stdin = strings.NewReader(user + ":Open Sesame\n")
	if out, err := chpasswd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v: %s", err, out)
	}
	service := "postdove-test-" + user
	if err := os.WriteFile("/etc/pam.d/"+service, deb, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/etc/pam.d/" + service) })
	conf := filepath.Join(t.TempDir(), "dovecot.conf")
	os.WriteFile(conf, []byte("auth_failure_delay = 0\npassdb {\n  driver = pam\n  args = "+service+"\n}\nuserdb {\n  driver = passwd\n}\n"), 0o644)
	doveadm := oracle.Postdove(t, "doveadm")
	ok := oracle.Run(exec.Command(doveadm, "-c", conf, "auth", "test", user, "Open Sesame"), "")
	if ok.Code != 0 || !strings.HasPrefix(ok.Stdout, "passdb: "+user+" auth succeeded\n") {
		t.Errorf("right password: %+v", ok)
	}
	bad := oracle.Run(exec.Command(doveadm, "-c", conf, "auth", "test", user, "open sesame"), "")
	if bad.Code != 77 || !strings.HasPrefix(bad.Stdout, "passdb: "+user+" auth failed\n") {
		t.Errorf("wrong password: %+v", bad)
	}
}

// TestBuildLinking: sendmail and postdrop stay static; doveadm, which
// checks passwords through PAM, links libpam.
func TestBuildLinking(t *testing.T) {
	for _, c := range []struct {
		name   string
		static bool
	}{{"sendmail", true}, {"postdrop", true}, {"doveadm", false}} {
		f, err := elf.Open(oracle.Postdove(t, c.name))
		if err != nil {
			t.Fatal(err)
		}
		libs, _ := f.ImportedLibraries()
		f.Close()
		pam := false
		for _, l := range libs {
			pam = pam || strings.HasPrefix(l, "libpam.so")
		}
		if c.static && len(libs) != 0 || !c.static && !pam {
			t.Errorf("%s links %v", c.name, libs)
		}
	}
}
