package auth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"postdove/pkg/doveconf"
)

// newAuth writes files into a temporary folder ("@DIR@" in their text
// becomes its path), loads dovecot.conf from it and builds an
// Authenticator for protocol imap.
func newAuth(t *testing.T, files map[string]string) (*Authenticator, string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.ReplaceAll(text, "@DIR@", dir)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := doveconf.Load(filepath.Join(dir, "dovecot.conf"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg.For(doveconf.Match{Protocol: "imap"}))
	if err != nil {
		t.Fatal(err)
	}
	return a, dir
}

const passwdFileConf = `auth_failure_delay = 1 secs
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = @DIR@/users
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN @DIR@/more
}
userdb {
  driver = passwd-file
  args = @DIR@/users
}
userdb {
  driver = static
  args = uid=root gid=0 home=/var/vmail/%d/%n
}
`

var passwdFileUsers = map[string]string{
	"dovecot.conf": passwdFileConf,
	"users": "alice:{SHA512-CRYPT}$6$Kyk84/InyERjyDCr$gFRDMOoqeLni1M8ki85CoIiX1MLZOgi94YOFcB6xTJnBBkvEw6ujN8NhiahMqKmQApyWYaTEqSjv91tuoR9gL/:1000:1000::/home/alice::userdb_mail=maildir:~/Mail\n" +
		"proxied:::::::proxy=y host=10.0.0.2 nopassword=y\n" +
		"nobodyhome:{PLAIN}pw\n" +
		"broken:{PLAIN}x:notanumber:1\n",
	"more": "carol:bare-plain\n",
}

func TestAuthenticatePasswdFile(t *testing.T) {
	a, dir := newAuth(t, passwdFileUsers)
	if a.FailureDelay != time.Second {
		t.Fatalf("auth_failure_delay = %v", a.FailureDelay)
	}
	var logged []string
	a.Logf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
	defer func() {
		want := "passwd-file " + dir + "/users line 4: User broken has invalid UID 'notanumber'"
		if len(logged) != 1 || logged[0] != want {
			t.Errorf("logged %q; want [%q] once", logged, want)
		}
	}()
	a.FailureDelay = 0
	ctx := context.Background()
	for _, c := range []struct {
		user, pass string
		kind       Kind // -1: success
		extra      string
	}{
		{"alice", "secret", -1, "user=alice"},
		{"ALICE", "secret", -1, "user=alice"}, // auth_username_format = %Lu
		{"alice", "Secret", Failed, ""},
		{"proxied", "anything", -1, "user=proxied proxy= host=10.0.0.2"},
		{"carol", "bare-plain", -1, "user=carol"}, // second passdb, scheme=PLAIN
		{"carol", "x", Failed, ""},
		{"dave", "x", UnknownUser, ""},
	} {
		res, err := a.Authenticate(ctx, Request{Service: "imap", User: c.user, Password: c.pass, Secured: true})
		if c.kind == -1 {
			var got []string
			for _, f := range res.Extra {
				got = append(got, f.Key+"="+f.Value)
			}
			if err != nil || strings.Join(got, " ") != c.extra {
				t.Errorf("%s/%s: %v %q; want %q", c.user, c.pass, err, got, c.extra)
			}
			continue
		}
		if KindOf(err) != c.kind {
			t.Errorf("%s/%s: error %v (kind %d); want kind %d", c.user, c.pass, err, KindOf(err), c.kind)
		}
	}
}

// TestFailureDelay: a wrong password is answered only after
// auth_failure_delay; a missing passwd-file (a temporary failure) is not
// delayed... but is reported as such.
func TestFailureDelay(t *testing.T) {
	a, dir := newAuth(t, passwdFileUsers)
	ctx := context.Background()
	for _, user := range []string{"alice", "dave"} {
		start := time.Now()
		_, err := a.Authenticate(ctx, Request{User: user, Password: "wrong", Secured: true})
		if err == nil {
			t.Fatalf("%s: wrong password accepted", user)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("%s: failure answered after %v, before auth_failure_delay (1s)", user, d)
		}
	}
	os.Remove(filepath.Join(dir, "users"))
	os.Remove(filepath.Join(dir, "more"))
	_, err := a.Authenticate(ctx, Request{User: "alice", Password: "secret", Secured: true})
	if KindOf(err) != Temporary || !strings.Contains(err.Error(), "No such file or directory") {
		t.Errorf("missing passwd-file: %v (kind %d); want a temporary failure naming the error", err, KindOf(err))
	}
}

func TestLookup(t *testing.T) {
	a, _ := newAuth(t, passwdFileUsers)
	ctx := context.Background()
	u, err := a.Lookup(ctx, "alice")
	if err != nil || u.UID != 1000 || u.GID != 1000 || u.Home != "/home/alice" {
		t.Fatalf("alice: %+v, %v", u, err)
	}
	if v, _ := fieldValue(u.Fields, "mail"); v != "maildir:~/Mail" {
		t.Errorf("alice mail = %q", v)
	}
	// Not in the passwd-file: the static userdb answers, uid by name.
	u, err = a.Lookup(ctx, "Bob@Example.com")
	if err != nil || u.UID != 0 || u.GID != 0 || u.Home != "/var/vmail/example.com/bob" {
		t.Errorf("static: %+v, %v", u, err)
	}
}

func TestStaticAndDeny(t *testing.T) {
	a, _ := newAuth(t, map[string]string{
		"dovecot.conf": `auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = @DIR@/denied
  deny = yes
}
passdb {
  driver = static
  args = password=letmein
}
userdb {
  driver = static
  args = uid=nosuchuser-xyz gid=0 home=/h/%u
}
`,
		"denied": "mallory\n",
	})
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, Request{User: "anyone", Password: "letmein", Secured: true}); err != nil {
		t.Errorf("static passdb: %v", err)
	}
	if _, err := a.Authenticate(ctx, Request{User: "anyone", Password: "no", Secured: true}); KindOf(err) != Failed {
		t.Errorf("static passdb, wrong password: %v", err)
	}
	if _, err := a.Authenticate(ctx, Request{User: "mallory", Password: "letmein", Secured: true}); KindOf(err) != Disabled {
		t.Errorf("deny passdb: %v", err)
	}
	if _, err := a.Lookup(ctx, "x"); KindOf(err) != Temporary || !strings.Contains(err.Error(), "Invalid uid") {
		t.Errorf("unknown uid name: %v", err)
	}
}

func TestPlaintext(t *testing.T) {
	a, _ := newAuth(t, passwdFileUsers)
	a.FailureDelay = 0
	if !a.DisablePlaintext {
		t.Fatal("disable_plaintext_auth defaults to yes")
	}
	ctx := context.Background()
	remote := Request{User: "alice", Password: "secret", RemoteIP: "192.0.2.7", LocalIP: "192.0.2.1"}
	if _, err := a.Authenticate(ctx, remote); KindOf(err) != PlaintextDisallowed {
		t.Errorf("plaintext from a remote address: %v", err)
	}
	if m := a.Offered(remote); len(m) != 0 {
		t.Errorf("offered %v on an insecure connection", m)
	}
	// Loopback is no exception: Dovecot refuses 127.0.0.2 to 127.0.0.1.
	if _, err := a.Authenticate(ctx, Request{User: "alice", Password: "secret", RemoteIP: "127.0.0.2", LocalIP: "127.0.0.1"}); KindOf(err) != PlaintextDisallowed {
		t.Errorf("plaintext from 127.0.0.2 to 127.0.0.1: %v", err)
	}
	for _, r := range []Request{
		{User: "alice", Password: "secret", RemoteIP: "127.0.0.1", LocalIP: "127.0.0.1"},
		{User: "alice", Password: "secret", RemoteIP: "::1", LocalIP: "::1"},
		{User: "alice", Password: "secret", RemoteIP: "192.0.2.1", LocalIP: "192.0.2.1"},
		{User: "alice", Password: "secret", RemoteIP: "192.0.2.7", Secured: true},
	} {
		if _, err := a.Authenticate(ctx, r); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
		if m := a.Offered(r); strings.Join(m, " ") != "PLAIN LOGIN" {
			t.Errorf("%+v: offered %v", r, m)
		}
	}
}

// TestSASL runs go-sasl's PLAIN and LOGIN clients against the servers.
func TestSASL(t *testing.T) {
	a, _ := newAuth(t, passwdFileUsers)
	a.FailureDelay = 0
	ctx := context.Background()
	req := Request{Service: "imap", RemoteIP: "127.0.0.1", LocalIP: "127.0.0.1"}
	for _, c := range []struct {
		mech   string
		client sasl.Client
		ok     bool
	}{
		{"PLAIN", sasl.NewPlainClient("", "alice", "secret"), true},
		{"PLAIN", sasl.NewPlainClient("", "alice", "wrong"), false},
		{"PLAIN", sasl.NewPlainClient("bob", "alice", "secret"), false},
		{"LOGIN", sasl.NewLoginClient("alice", "secret"), true},
		{"LOGIN", sasl.NewLoginClient("alice", "wrong"), false},
	} {
		var res Result
		srv, err := a.SASL(ctx, c.mech, req, &res)
		if err != nil {
			t.Fatal(err)
		}
		_, ir, _ := c.client.Start()
		resp := ir
		var done bool
		for i := 0; i < 5 && !done; i++ {
			var chal []byte
			chal, done, err = srv.Next(resp)
			if done || err != nil {
				break
			}
			resp, _ = c.client.Next(chal)
		}
		if c.ok && (err != nil || res.User != "alice") {
			t.Errorf("%s ok case: %v, user %q", c.mech, err, res.User)
		}
		if !c.ok && err == nil {
			t.Errorf("%s: wrong credentials accepted", c.mech)
		}
	}
	// LOGIN without an initial response: the server asks for both.
	var res Result
	srv, _ := a.SASL(ctx, "login", req, &res)
	for i, step := range []struct{ resp, chal string }{{"", "Username:"}, {"alice", "Password:"}, {"secret", ""}} {
		var resp []byte
		if i > 0 {
			resp = []byte(step.resp)
		}
		chal, done, err := srv.Next(resp)
		if string(chal) != step.chal || done != (i == 2) || err != nil {
			t.Fatalf("LOGIN step %d: %q %v %v", i, chal, done, err)
		}
	}
	if res.User != "alice" {
		t.Errorf("LOGIN: user %q", res.User)
	}
	if _, err := a.SASL(ctx, "CRAM-MD5", req, &res); err != ErrUnsupportedMech {
		t.Errorf("CRAM-MD5: %v", err)
	}
}
