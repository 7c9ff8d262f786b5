package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"

	"postdove/pkg/doveconf"
)

// systemUser adds a real account (removed when the test ends) and returns
// its name; setPassword sets its password through chpasswd with a crypt
// method ("YESCRYPT", "SHA512", ...).
func systemUser(t *testing.T) (name string, setPassword func(method, pw string) string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root")
		}
		t.Skip("needs root (useradd, chpasswd, /etc/shadow)")
	}
	for _, tool := range []string{"useradd", "userdel", "chpasswd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	b := make([]byte, 4)
	rand.Read(b)
	name = "pdauth" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "-M", "-d", "/home/"+name, "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	setPassword = func(method, pw string) string {
		t.Helper()
		cmd := exec.Command("chpasswd", "-c", method)
		cmd.Stdin = strings.NewReader(name + ":" + pw + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("chpasswd -c %s: %v: %s", method, err, out)
		}
		hash, err := lookupColonFile("/etc/shadow", name)
		if err != nil {
			t.Fatal(err)
		}
		return hash
	}
	return name, setPassword
}

// TestShadowSystemUser: the shadow passdb checks the hashes chpasswd
// writes with each crypt method a system uses.
func TestShadowSystemUser(t *testing.T) {
	name, setPassword := systemUser(t)
	db := &shadowDB{path: "/etc/shadow"}
	ctx := context.Background()
	for _, m := range []struct{ method, prefix string }{{"MD5", "$1$"}, {"SHA256", "$5$"}, {"SHA512", "$6$"}, {"YESCRYPT", "$y$"}} {
		hash := setPassword(m.method, "Pa55 "+m.method)
		if !strings.HasPrefix(hash, m.prefix) {
			t.Fatalf("chpasswd -c %s wrote %q", m.method, hash)
		}
		if _, err := db.verify(ctx, &Request{User: name, Password: "Pa55 " + m.method}); err != nil {
			t.Errorf("%s: right password refused: %v", m.method, err)
		}
		if _, err := db.verify(ctx, &Request{User: name, Password: "pa55 " + m.method}); KindOf(err) != Failed {
			t.Errorf("%s: wrong password: %v", m.method, err)
		}
	}
	if _, err := db.verify(ctx, &Request{User: name + "x", Password: "x"}); KindOf(err) != UnknownUser {
		t.Errorf("unknown user: %v", err)
	}
	if out, err := exec.Command("usermod", "-L", name).CombinedOutput(); err != nil {
		t.Fatalf("usermod -L: %v: %s", err, out)
	}
	if _, err := db.verify(ctx, &Request{User: name, Password: "Pa55 YESCRYPT"}); KindOf(err) != Failed {
		t.Errorf("locked account: %v", err)
	}
}

// TestStockSystemAuth: the stock auth-system.conf.ext (passdb pam with
// the "dovecot" service, userdb passwd) authenticates and looks up a real
// account as shipped.
func TestStockSystemAuth(t *testing.T) {
	if !PAMAvailable {
		t.Skip("built without cgo")
	}
	name, setPassword := systemUser(t)
	setPassword("YESCRYPT", "s3cret word")
	cfg, err := doveconf.Load("../../etc/dovecot/dovecot.conf")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg.For(doveconf.Match{Protocol: "imap"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Passdbs) != 1 || a.Passdbs[0].Driver != "pam" || len(a.Userdbs) != 1 || a.Userdbs[0].Driver != "passwd" {
		t.Fatalf("stock passdbs %+v, userdbs %+v", a.Passdbs, a.Userdbs)
	}
	a.FailureDelay = 0
	ctx := context.Background()
	req := Request{Service: "imap", User: name, Password: "s3cret word", RemoteIP: "127.0.0.1", LocalIP: "127.0.0.1"}
	res, err := a.Authenticate(ctx, req)
	if err != nil || res.User != name {
		t.Fatalf("pam: %v, %+v", err, res)
	}
	req.Password = "s3cret Word"
	if _, err := a.Authenticate(ctx, req); KindOf(err) != Failed {
		t.Errorf("pam, wrong password: %v (kind %d)", err, KindOf(err))
	}
	req.User = name + "x"
	if _, err := a.Authenticate(ctx, req); err == nil || KindOf(err) == Temporary {
		t.Errorf("pam, unknown user: %v", err)
	}
	u, err := a.Lookup(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	sys, _ := user.Lookup(name)
	if strconv.Itoa(u.UID) != sys.Uid || strconv.Itoa(u.GID) != sys.Gid || u.Home != "/home/"+name {
		t.Errorf("passwd userdb: %+v; system says %+v", u, sys)
	}
	if _, err := a.Lookup(ctx, name+"x"); KindOf(err) != UnknownUser {
		t.Errorf("passwd userdb, unknown user: %v", err)
	}
}
