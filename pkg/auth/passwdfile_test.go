package auth

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePasswdFile(t *testing.T) {
	data := "# users\n" +
		"alice:{PLAIN}pw:1000:1000::/home/alice::userdb_mail=maildir:~/Mail quota_rule=*:storage=1G\n" +
		"\n" +
		"bob@example.com:{SHA512-CRYPT}$6$x$y:1001:1001:Bob B:/home/bob:/bin/sh\r\n" +
		"proxied:::::::proxy=y host=10.0.0.2 nopassword=y\n" +
		"short:{PLAIN}x\n" +
		"badid:{PLAIN}x:12a:1000\n" +
		"alice:{PLAIN}dup\n" +
		":nouser\n"
	pf := ParsePasswdFile("/etc/dovecot/users", []byte(data))
	a := pf.Users["alice"]
	if a == nil || a.Password != "{PLAIN}pw" || a.UID != "1000" || a.Home != "/home/alice" || a.Line != 2 {
		t.Fatalf("alice = %+v", a)
	}
	want := []Field{{"userdb_mail", "maildir:~/Mail"}, {"quota_rule", "*:storage=1G"}}
	if !reflect.DeepEqual(a.Extra, want) {
		t.Errorf("alice extra = %v, want %v", a.Extra, want)
	}
	if b := pf.Users["bob@example.com"]; b == nil || b.Gecos != "Bob B" || b.Shell != "/bin/sh" || b.Extra != nil {
		t.Errorf("bob = %+v", b)
	}
	p := pf.Users["proxied"]
	if p == nil || !truthy(p.Extra, "proxy") || !truthy(p.Extra, "nopassword") {
		t.Errorf("proxied = %+v", p)
	}
	if v, _ := fieldValue(p.Extra, "host"); v != "10.0.0.2" {
		t.Errorf("host = %q", v)
	}
	if s := pf.Users["short"]; s == nil || s.Password != "{PLAIN}x" || s.UID != "" {
		t.Errorf("short = %+v", s)
	}
	if _, ok := pf.Users["badid"]; ok {
		t.Error("badid with uid 12a was kept")
	}
	wantProblems := []string{
		"passwd-file /etc/dovecot/users line 7: User badid has invalid UID '12a'",
		"passwd-file /etc/dovecot/users line 8: User alice exists more than once",
		"passwd-file /etc/dovecot/users line 9: Empty user name",
	}
	if !reflect.DeepEqual(pf.Problems, wantProblems) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(pf.Problems, "\n"), strings.Join(wantProblems, "\n"))
	}
}

// FuzzParsePasswdFile: any file parses without panicking, every entry
// kept has a user name, and each problem names the file and a line.
func FuzzParsePasswdFile(f *testing.F) {
	for _, s := range []string{
		"alice:{PLAIN}pw:1000:1000::/home/alice::userdb_mail=maildir:~/Mail\n",
		"proxied:::::::proxy=y host=10.0.0.2 nopassword=y\n#c\n\n",
		"a:b:c:d:e:f:g:h:i:j\n", ":\n", "x:y:-1:99999999999\n", "dup:1\ndup:2\n", "a:b:::::: = =x x= \r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		pf := ParsePasswdFile("users", []byte(data))
		for name, e := range pf.Users {
			if name == "" || e.User != name || e.Line < 1 {
				t.Fatalf("bad entry %q: %+v", name, e)
			}
			for _, fl := range e.Extra {
				if fl.Key == "" {
					t.Fatalf("empty extra field key in %+v", e)
				}
			}
		}
		for _, p := range pf.Problems {
			if !strings.HasPrefix(p, "passwd-file users line ") {
				t.Fatalf("problem without file and line: %q", p)
			}
		}
	})
}
