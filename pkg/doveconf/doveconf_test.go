package doveconf

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// write creates the files (path -> content) under a fresh folder and
// returns the folder.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, conf string) *Config {
	t.Helper()
	dir := write(t, map[string]string{"dovecot.conf": conf})
	cfg, err := Load(filepath.Join(dir, "dovecot.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestStockConfig(t *testing.T) {
	cfg, err := Load("../../etc/dovecot/dovecot.conf")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Global()
	if got := s.Get("ssl"); got != "required" {
		t.Errorf("ssl = %q", got)
	}
	if got := s.Get("ssl_cert"); got != "</etc/pki/dovecot/certs/dovecot.pem" {
		t.Errorf("ssl_cert = %q", got)
	}
	if got := s.Protocols(); !reflect.DeepEqual(got, []string{"imap", "pop3", "lmtp"}) {
		t.Errorf("protocols = %q", got)
	}
	if got := s.Get("login_greeting"); got != "Dovecot ready." {
		t.Errorf("login_greeting = %q", got)
	}
	if !s.Bool("disable_plaintext_auth") || s.Uint("first_valid_uid") != 500 || s.Duration("auth_failure_delay") != 2*time.Second {
		t.Errorf("defaults: disable_plaintext_auth %v first_valid_uid %d auth_failure_delay %v",
			s.Bool("disable_plaintext_auth"), s.Uint("first_valid_uid"), s.Duration("auth_failure_delay"))
	}
	if got := s.Size("imap_max_line_length"); got != 64<<10 {
		t.Errorf("imap_max_line_length = %d", got)
	}
	ns := s.Namespaces()
	if len(ns) != 1 || ns[0].Name != "inbox" || !ns[0].Inbox || len(ns[0].Mailboxes) != 5 {
		t.Fatalf("namespaces = %+v", ns)
	}
	want := map[string]string{"Drafts": `\Drafts`, "Junk": `\Junk`, "Trash": `\Trash`, "Sent": `\Sent`, "Sent Messages": `\Sent`}
	for _, m := range ns[0].Mailboxes {
		if want[m.Name] != m.SpecialUse || m.Auto != "no" {
			t.Errorf("mailbox %q: special_use %q auto %q", m.Name, m.SpecialUse, m.Auto)
		}
	}
	if p := s.Passdbs(); len(p) != 1 || p[0].Driver != "pam" {
		t.Errorf("passdbs = %+v", p)
	}
	if u := s.Userdbs(); len(u) != 1 || u[0].Driver != "passwd" {
		t.Errorf("userdbs = %+v", u)
	}
	svc, ok := s.Service("imap-login")
	if !ok {
		t.Fatal("no imap-login service")
	}
	ports := map[string]int{}
	for _, l := range svc.Listeners {
		ports[l.Name] = l.Port
		if l.Name == "imaps" && !l.SSL {
			t.Error("imaps is not ssl")
		}
	}
	if ports["imap"] != 143 || ports["imaps"] != 993 {
		t.Errorf("imap-login listeners = %+v", svc.Listeners)
	}
	if svc.Settings["user"] != "dovenull" || svc.Settings["chroot"] != "login" {
		t.Errorf("imap-login user %q chroot %q", svc.Settings["user"], svc.Settings["chroot"])
	}
	lmtp, _ := s.Service("lmtp")
	if len(lmtp.Listeners) != 1 || lmtp.Listeners[0].Kind != "unix_listener" || lmtp.Listeners[0].Mode != "0666" {
		t.Errorf("lmtp listeners = %+v", lmtp.Listeners)
	}
}

func TestLabEdits(t *testing.T) {
	cfg := load(t, `protocols = imap
disable_plaintext_auth = no
ssl = yes
mail_location = maildir:~/Maildir
postmaster_address = postmaster@example.ops
namespace inbox {
  inbox = yes
}
service imap-login {
  inet_listener imap {
    port = 0
  }
}
`)
	s := cfg.Global()
	if got := s.Protocols(); !reflect.DeepEqual(got, []string{"imap"}) {
		t.Errorf("protocols = %q", got)
	}
	if s.Bool("disable_plaintext_auth") || s.Get("ssl") != "yes" || s.Get("postmaster_address") != "postmaster@example.ops" {
		t.Error("lab settings not read")
	}
	if got := s.PostmasterAddress("example.ops"); got != "postmaster@example.ops" {
		t.Errorf("postmaster address %q", got)
	}
	ml := s.Location(s.Namespaces()[0]).Expand(Vars{User: "alice", Home: "/home/alice"})
	if ml.Format != "maildir" || ml.Root != "/home/alice/Maildir" {
		t.Errorf("mail location = %+v", ml)
	}
	svc, _ := s.Service("imap-login")
	for _, l := range svc.Listeners {
		if l.Name == "imap" && l.Port != 0 {
			t.Errorf("imap port = %d, want 0", l.Port)
		}
		if l.Name == "imaps" && l.Port != 993 {
			t.Errorf("imaps port = %d, want the built-in 993", l.Port)
		}
	}
}

func TestPostmasterDefault(t *testing.T) {
	s := load(t, "hostname = mail.example.ops\n").Global()
	if got := s.PostmasterAddress("example.com"); got != "postmaster@example.com" {
		t.Errorf("for example.com: %q", got)
	}
	if got := s.PostmasterAddress(""); got != "postmaster@mail.example.ops" {
		t.Errorf("without a domain: %q", got)
	}
}

func TestIncludes(t *testing.T) {
	dir := write(t, map[string]string{
		"dovecot.conf":       "!include conf.d/*.conf\n!include_try local.conf\n!include_try none/*.conf\n!include ext\n",
		"conf.d/20-b.conf":   "mail_location = mbox:~/mail\n",
		"conf.d/10-a.conf":   "mail_location = maildir:~/Maildir\nhostname = a\n",
		"conf.d/30-c.conf":   "!include ../ext/x.conf.ext\n",
		"ext/x.conf.ext":     "passdb {\n  driver = passwd-file\n  args = /etc/dovecot/users\n}\n",
		"conf.d/cert.pem.in": "not included\n",
		"local.conf":         "hostname = local\n",
	})
	cfg, err := Load(filepath.Join(dir, "dovecot.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Global()
	// Files are read in name order, so 20-b.conf wins over 10-a.conf, and
	// local.conf comes last; a folder ("!include ext") gives nothing.
	if s.Get("mail_location") != "mbox:~/mail" || s.Get("hostname") != "local" {
		t.Errorf("mail_location %q hostname %q", s.Get("mail_location"), s.Get("hostname"))
	}
	if p := s.Passdbs(); len(p) != 1 || p[0].Args != "/etc/dovecot/users" {
		t.Errorf("passdbs = %+v", p)
	}
	v, _ := s.Value("hostname")
	if v.File != filepath.Join(dir, "local.conf") || v.Line != 1 {
		t.Errorf("hostname set at %s:%d", v.File, v.Line)
	}
}

func TestValueForms(t *testing.T) {
	dir := write(t, map[string]string{
		"dovecot.conf": `auth_mechanisms = plain \
  login
login_greeting = "  Ready.  "
log_path = "/var/log/dove\"cot.log"
ssl_cipher_list = 'HIGH:!aNULL'
mail_plugins = acl
mail_plugins = $mail_plugins quota
protocol imap {
  mail_plugins = $mail_plugins imap_acl
}
login_trusted_networks = 10.0.0.0/8 # a comment
ssl_cert = <certs/dovecot.pem
`,
		"certs/dovecot.pem": "-----BEGIN CERTIFICATE-----\n",
	})
	cfg, err := Load(filepath.Join(dir, "dovecot.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Global()
	for name, want := range map[string]string{
		"auth_mechanisms":        "plain login",
		"login_greeting":         "  Ready.  ",
		"log_path":               `/var/log/dove"cot.log`,
		"ssl_cipher_list":        "HIGH:!aNULL",
		"mail_plugins":           "acl quota",
		"login_trusted_networks": "10.0.0.0/8",
	} {
		if got := s.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := cfg.For(Match{Protocol: "imap"}).Get("mail_plugins"); got != "acl quota imap_acl" {
		t.Errorf("imap mail_plugins = %q", got)
	}
	if got, err := s.File("ssl_cert"); err != nil || got != "-----BEGIN CERTIFICATE-----\n" {
		t.Errorf("ssl_cert file = %q, %v", got, err)
	}
	cfg = load(t, "ssl_key = </nonexistent/key.pem\n")
	if _, err := cfg.Global().File("ssl_key"); err == nil || !strings.Contains(err.Error(), "ssl_key: Can't open file /nonexistent/key.pem: No such file or directory") {
		t.Errorf("missing key file: %v", err)
	}
}

func TestFilters(t *testing.T) {
	cfg := load(t, `disable_plaintext_auth = yes
protocol imap {
  mail_max_userip_connections = 20
}
protocol !imap {
  mail_max_userip_connections = 5
}
remote 10.0.0.0/8 {
  disable_plaintext_auth = no
  protocol pop3 {
    mail_max_userip_connections = 1
  }
}
local 127.0.0.1 {
  ssl = no
}
`)
	for _, c := range []struct {
		m          Match
		name, want string
	}{
		{Match{}, "mail_max_userip_connections", "10"},
		{Match{Protocol: "imap"}, "mail_max_userip_connections", "20"},
		{Match{Protocol: "pop3"}, "mail_max_userip_connections", "5"},
		{Match{Protocol: "pop3", Remote: "10.1.2.3"}, "mail_max_userip_connections", "1"},
		{Match{Protocol: "imap", Remote: "10.1.2.3"}, "disable_plaintext_auth", "no"},
		{Match{Protocol: "imap", Remote: "192.168.1.1"}, "disable_plaintext_auth", "yes"},
		{Match{Local: "127.0.0.1"}, "ssl", "no"},
		{Match{Local: "::ffff:127.0.0.1"}, "ssl", "no"},
		{Match{Local: "127.0.0.2"}, "ssl", "yes"},
	} {
		if got := cfg.For(c.m).Get(c.name); got != c.want {
			t.Errorf("%+v: %s = %q, want %q", c.m, c.name, got, c.want)
		}
	}
}

func TestConflict(t *testing.T) {
	for _, c := range []struct {
		conf, key string
		line      int
	}{
		// A protocol block and a nested block for one place both set ssl.
		{"protocol imap {\n  ssl = no\n}\nlocal 10.1.1.1 {\n  protocol imap {\n    ssl = no\n  }\n}\n", "ssl", 1},
		// A protocol block and the place's own block, with a nested block.
		{"local 10.1.1.1 {\n  ssl = yes\n  protocol imap {\n    mail_debug = yes\n  }\n}\nprotocol imap {\n  ssl = no\n}\n", "ssl", 7},
		// The nested block overrides its own place's block: no conflict.
		{"local 10.1.1.1 {\n  ssl = no\n  protocol imap {\n    ssl = yes\n  }\n}\n", "", 0},
		// Without a nested block the two never meet.
		{"protocol imap {\n  ssl = no\n}\nlocal 10.1.1.1 {\n  ssl = yes\n}\n", "", 0},
	} {
		key, at := load(t, c.conf).conflict(nil)
		if key != c.key || (at == nil) != (c.line == 0) || at != nil && at.Line != c.line {
			t.Errorf("%q: conflict %q at %+v", c.conf, key, at)
		}
	}
	cfg := load(t, "protocol imap {\n  ssl = no\n}\nremote 10.0.0.0/8 {\n  ssl = yes\n}\n")
	if key, at := cfg.conflict(&Match{Protocol: "imap", Remote: "10.1.2.3"}); key != "ssl" || at == nil || at.Line != 1 {
		t.Errorf("-f conflict %q at %+v", key, at)
	}
	if _, at := cfg.conflict(&Match{Protocol: "imap", Remote: "192.168.1.1"}); at != nil {
		t.Errorf("conflict outside the network at %+v", at)
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct{ conf, want string }{
		{"foo = bar\n", "line 1: Unknown setting: foo"},
		{"\n\nfoo {\n}\n", "line 3: Unknown setting: foo { foo"},
		{"service imap {\n  foo = 1\n}\n", "line 2: Unknown setting: service { foo"},
		{"service imap {\n  inet_listener imap {\n    foo = 1\n  }\n}\n", "line 3: Unknown setting: service { inet_listener { foo"},
		{"namespace inbox {\n  mailbox Trash {\n    special = x\n  }\n}\n", "line 3: Unknown setting: namespace { mailbox { special"},
		{"service imap {\n  process_limit = 1\n", ": Missing '}' (section started at "},
		{"ssl = yes\n}\n", "line 2: Unexpected '}'"},
		{"ssl yes\n", "line 1: Expecting '{'"},
		{"= x\n", "line 1: Missing key name ('=' at the beginning of line)"},
		{"!include nosuch.conf\n", "line 1: No matches"},
		{"disable_plaintext_auth = maybe\n", "line 1: Invalid boolean value: maybe (use yes or no)"},
		{"ssl = sometimes\n", "line 1: Invalid value: sometimes"},
		{"first_valid_uid = abc\n", "line 1: Invalid number abc: Not a valid number"},
		{"auth_failure_delay = 2 lightyears\n", "line 1: Invalid time interval: 2 lightyears"},
		{"imap_max_line_length = 10 parsecs\n", "line 1: Invalid size: 10 parsecs"},
		{"service imap-login {\n  inet_listener imap {\n    port = 99999\n  }\n}\n", "line 3: Invalid port number 99999"},
		{"protocol imap {\n  protocol pop3 {\n  }\n}\n", "line 2: Nested protocol { protocol { .. } } block not allowed"},
		{"protocol imap {\n  remote 10.0.0.0/8 {\n  }\n}\n", "line 2: protocol { remote { .. } } not allowed (use remote { protocol { .. } } instead)"},
		{"namespace inbox {\n  mailbox Trash\n  }\n}\n", "line 2: Expecting '{'"},
	} {
		dir := write(t, map[string]string{"dovecot.conf": c.conf})
		path := filepath.Join(dir, "dovecot.conf")
		_, err := Load(path)
		want := "Error in configuration file " + path + " " + c.want
		if strings.HasPrefix(c.want, ":") {
			want = "Error in configuration file " + path + c.want
		}
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: error %v, want %s", c.conf, err, want)
		}
	}
}

// An error in an included file names that file and its line.
func TestErrorInInclude(t *testing.T) {
	dir := write(t, map[string]string{
		"dovecot.conf":         "protocols = imap\n!include conf.d/*.conf\n",
		"conf.d/10-mail.conf":  "#\n#\n#\n#\nfoo = bar\n",
		"conf.d/10-auth.conf":  "!include auth-sytem.conf.ext\n",
		"conf.d/auth-x.conf.e": "",
	})
	_, err := Load(filepath.Join(dir, "dovecot.conf"))
	want := "Error in configuration file " + filepath.Join(dir, "conf.d/10-auth.conf") + " line 1: No matches"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	os.Remove(filepath.Join(dir, "conf.d/10-auth.conf"))
	_, err = Load(filepath.Join(dir, "dovecot.conf"))
	want = "Error in configuration file " + filepath.Join(dir, "conf.d/10-mail.conf") + " line 5: Unknown setting: foo"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestIncludeLoop(t *testing.T) {
	dir := write(t, map[string]string{"dovecot.conf": "!include dovecot.conf\n"})
	_, err := Load(filepath.Join(dir, "dovecot.conf"))
	if err == nil || !strings.Contains(err.Error(), "Recursive include file") {
		t.Errorf("error %v", err)
	}
}

func TestAmbiguousHash(t *testing.T) {
	cfg := load(t, "imap_client_workarounds = delay-newmail#x\n")
	if got := cfg.Global().Get("imap_client_workarounds"); got != "delay-newmail" {
		t.Errorf("value %q", got)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "line 1: Ambiguous '#' character in line, treating it as comment.") {
		t.Errorf("warnings %q", cfg.Warnings)
	}
}

func TestMailLocation(t *testing.T) {
	v := Vars{User: "Alice@Example.com", Home: "/home/alice"}
	for _, c := range []struct {
		in   string
		want MailLocation
	}{
		{"maildir:~/Maildir", MailLocation{Format: "maildir", Root: "/home/alice/Maildir"}},
		{"mbox:~/mail:INBOX=/var/mail/%u", MailLocation{Format: "mbox", Root: "/home/alice/mail", Inbox: "/var/mail/Alice@Example.com"}},
		{"mbox:~/mail:INBOX=/var/mail/%Ln", MailLocation{Format: "mbox", Root: "/home/alice/mail", Inbox: "/var/mail/alice"}},
		{"maildir:/var/vmail/%d/%n:LAYOUT=fs:INDEX=/var/index/%u:CONTROL=~/control", MailLocation{Format: "maildir",
			Root: "/var/vmail/Example.com/Alice", Layout: "fs", Index: "/var/index/Alice@Example.com", Control: "/home/alice/control"}},
		{"maildir:%h/Mail::x%%:NOINBOX:FOO=%n", MailLocation{Format: "maildir", Root: "/home/alice/Mail:x%", Options: map[string]string{"FOO": "Alice", "NOINBOX": ""}}},
		{"maildir:%{home}/M:INDEX=MEMORY", MailLocation{Format: "maildir", Root: "/home/alice/M", Index: "MEMORY"}},
		{"", MailLocation{}},
	} {
		if got := ParseMailLocation(c.in).Expand(v); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, want %+v", c.in, got, c.want)
		}
	}
}

// Main never panics and keeps Dovecot's output layout; a configuration
// error is exit 89 with the file and line.
func TestMain(t *testing.T) {
	dir := write(t, map[string]string{"dovecot.conf": "protocols = imap\nssl_key = </k.pem\n", "bad.conf": "\nfoo = 1\n"})
	var out, errb bytes.Buffer
	Main([]string{"doveconf", "-c", filepath.Join(dir, "dovecot.conf"), "-n"}, &out, &errb)
	if !strings.HasPrefix(out.String(), "# "+Version+" (postdove): "+filepath.Join(dir, "dovecot.conf")+"\n# OS: ") ||
		!strings.Contains(out.String(), "\nprotocols = imap\nssl_key = # hidden, use -P to show it\n") {
		t.Errorf("-n output:\n%s", out.String())
	}
	out.Reset()
	Main([]string{"doveconf", "-c", filepath.Join(dir, "dovecot.conf"), "-h", "protocols", "ssl_key", "mail_location"}, &out, &errb)
	if out.String() != "imap\n</k.pem\n\n" {
		t.Errorf("-h output %q", out.String())
	}
	out.Reset()
	errb.Reset()
	code := Main([]string{"doveconf", "-c", filepath.Join(dir, "bad.conf"), "-n"}, &out, &errb)
	if code != ExitFatal || errb.String() != "doveconf: Fatal: Error in configuration file "+filepath.Join(dir, "bad.conf")+" line 2: Unknown setting: foo\n" {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"doveconf", "-q"}, &out, &errb); code != ExitFatal || errb.String() != "doveconf: invalid option -- 'q'\n" {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"../../etc/dovecot/dovecot.conf", "../../etc/dovecot/conf.d/*.conf", "../../etc/dovecot/conf.d/*.ext", "../../compat/testdata/doveconf/broken/*.conf"} {
		files, _ := filepath.Glob(p)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Add("remote 10.0.0.0/8 {\n  protocol imap {\n    ssl = no\n  }\n}\nplugin {\n  x = \"a\\\"b\"\n}\n")
	f.Add("a = b \\\n\\\n")
	dir := f.TempDir()
	path := filepath.Join(dir, "dovecot.conf")
	f.Fuzz(func(t *testing.T, conf string) {
		if strings.Contains(conf, "!include") {
			t.Skip("includes read other files")
		}
		cfg, err := Parse(path, []byte(conf))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "Error in configuration file "+path) {
				t.Fatalf("error without the file name: %v", err)
			}
			if cfg == nil {
				return
			}
		}
		for _, o := range []dumpOptions{{}, {all: true}} {
			render(cfg.Top, nil, o)
			renderFilters(cfg, o)
		}
		s := cfg.For(Match{Protocol: "imap", Remote: "10.0.0.1", Local: "127.0.0.1"})
		s.Namespaces()
		s.Services()
		s.Passdbs()
		s.MailLocation().Expand(Vars{User: "a@b", Home: "/h"})
		Check(s)
	})
}

// FuzzQuery asks the stock configuration for arbitrary names and filters,
// as "doveconf -f FILTER NAME" does.
func FuzzQuery(f *testing.F) {
	for _, seed := range [][2]string{
		{"mail_location", "protocol=imap"}, {"service/imap-login/inet_listener/imap/port", "remote=10.0.0.1"},
		{"namespace", "local=127.0.0.1"}, {"service", "local_name=mail.example.ops"}, {"plugin/x", "bogus"},
		{"service//", "protocol=!imap"}, {"namespace/inbox/mailbox/Trash/special_use", "remote=::1"},
	} {
		f.Add(seed[0], seed[1])
	}
	conf, err := filepath.Abs("../../etc/dovecot/dovecot.conf")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, filter string) {
		var out, errb bytes.Buffer
		code := Main([]string{"doveconf", "-c", conf, "-f", filter, "--", name}, &out, &errb)
		if code != 0 && code != ExitFatal {
			t.Fatalf("exit %d", code)
		}
	})
}

// BenchmarkLoadStock reads the stock dovecot.conf with its conf.d files,
// as each daemon does at start.
func BenchmarkLoadStock(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cfg, err := Load("../../etc/dovecot/dovecot.conf")
		if err != nil {
			b.Fatal(err)
		}
		cfg.For(Match{Protocol: "imap"}).Services()
	}
}
