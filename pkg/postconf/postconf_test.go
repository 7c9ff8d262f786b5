package postconf

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeConf makes a config dir holding main.cf (and master.cf if given).
func writeConf(t *testing.T, mainCF, masterCF string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if masterCF != "" {
		if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(masterCF), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, mainCF string) *Config {
	t.Helper()
	c, err := Load(writeConf(t, mainCF, ""))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestLabConfigExpands(t *testing.T) {
	c := load(t, "# lab 4a vm2\nmyhostname = vm2.example.ops\nmydomain = example.ops\nmyorigin = $mydomain\n"+
		"inet_interfaces = all\nrelayhost = [vm3.example.ops]\n"+
		"mydestination = $mydomain, $myhostname,\n\tlocalhost.$mydomain, localhost\n")
	for name, want := range map[string]string{
		"myorigin":      "example.ops",
		"mydestination": "example.ops, vm2.example.ops,\tlocalhost.example.ops, localhost",
		"relayhost":     "[vm3.example.ops]",
		"smtpd_banner":  "vm2.example.ops ESMTP Postfix",
		"relay_domains": "example.ops, vm2.example.ops,\tlocalhost.example.ops, localhost",
		"home_mailbox":  "",
	} {
		if got := c.Get(name); got != want {
			t.Errorf("Get(%s) = %q, want %q", name, got, want)
		}
	}
	if got := c.List("mydestination"); strings.Join(got, "|") != "example.ops|vm2.example.ops|localhost.example.ops|localhost" {
		t.Errorf("List(mydestination) = %q", got)
	}
	if raw, ok := c.Raw("myorigin"); !ok || raw != "$mydomain" {
		t.Errorf("Raw(myorigin) = %q, %v", raw, ok)
	}
	if _, ok := c.Raw("relay_domains"); ok {
		t.Error("Raw reports a default as set")
	}
	if got := strings.Join(c.Names(), " "); got != "myhostname mydomain myorigin inet_interfaces relayhost mydestination" {
		t.Errorf("Names() = %s", got)
	}
}

func TestDerivedDefaults(t *testing.T) {
	c := load(t, "myhostname = vm3.example.ops\n")
	if got := c.Get("mydomain"); got != "example.ops" {
		t.Errorf("mydomain = %q", got)
	}
	if got := c.Get("myorigin"); got != "vm3.example.ops" {
		t.Errorf("myorigin = %q", got)
	}
	if got := domainOf("example.com"); got != "localdomain" {
		t.Errorf("domainOf(example.com) = %q", got)
	}
}

func TestTypedGetters(t *testing.T) {
	c := load(t, "maximal_queue_lifetime = 2\nmessage_size_limit = 10240000\nbiff = no\nqueue_run_delay = 300\nminimal_backoff_time = 1h\nhopcount_limit = 50\n")
	for name, want := range map[string]time.Duration{
		"maximal_queue_lifetime": 48 * time.Hour, // default unit d
		"queue_run_delay":        300 * time.Second,
		"minimal_backoff_time":   time.Hour,
		"bounce_queue_lifetime":  5 * 24 * time.Hour,
		"delay_warning_time":     0,
	} {
		if got := c.Duration(name); got != want {
			t.Errorf("Duration(%s) = %v, want %v", name, got, want)
		}
	}
	if c.Size("message_size_limit") != 10240000 || c.Int("hopcount_limit") != 50 {
		t.Error("Size/Int wrong")
	}
	if c.Bool("biff") || !c.Bool("append_dot_mydomain") {
		t.Error("Bool wrong: biff must be no, append_dot_mydomain yes at level 0")
	}
}

func TestCompatibilityLevels(t *testing.T) {
	legacy := load(t, "myhostname = a.b.c\n")
	modern := load(t, "myhostname = a.b.c\ncompatibility_level = 3.6\n")
	cases := []struct{ name, legacy, modern string }{
		{"smtpd_relay_restrictions", "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination", "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"},
		{"mynetworks_style", "subnet", "host"},
		{"relay_domains", "a.b.c, localhost.b.c, localhost", ""},
		{"append_dot_mydomain", "yes", "no"},
		{"smtputf8_enable", "no", "yes"},
		{"smtpd_relay_before_recipient_restrictions", "no", "yes"},
	}
	for _, tc := range cases {
		if got := legacy.Get(tc.name); got != tc.legacy {
			t.Errorf("level 0 %s = %q, want %q", tc.name, got, tc.legacy)
		}
		if got := modern.Get(tc.name); got != tc.modern {
			t.Errorf("level 3.6 %s = %q, want %q", tc.name, got, tc.modern)
		}
	}
	notes := strings.Join(legacy.CompatNotices(), "\n")
	for _, want := range []string{"using backwards-compatible default setting relay_domains=$mydestination", "append_dot_mydomain=yes", "mynetworks_style=subnet"} {
		if !strings.Contains(notes, want) {
			t.Errorf("CompatNotices lacks %q:\n%s", want, notes)
		}
	}
	if n := modern.CompatNotices(); len(n) != 0 {
		t.Errorf("level 3.6 has notices: %q", n)
	}
	if got := load(t, "mynetworks = 10.0.0.0/8\nrelay_domains =\n").CompatNotices(); strings.Contains(strings.Join(got, " "), "mynetworks_style") || strings.Contains(strings.Join(got, " "), "relay_domains") {
		t.Errorf("notices for settings main.cf overrides: %q", got)
	}
}

func TestExpansionForms(t *testing.T) {
	c := load(t, "a = x\nempty =\nlvl = 2\n")
	for in, want := range map[string]string{
		"$a ${a} $(a)":                      "x x x",
		"${a?yes}${empty?no}":               "yes",
		"${a:no}${empty:yes}${nosuch:d}":    "yesd",
		"${a?{T}:{F}} ${empty?{T}:{F}}":     "T F",
		"${{$a} == {x} ? {eq} : {ne}}":      "eq",
		"${{$lvl} <level {3.6} ? {old}}":    "old",
		"${{10} > {9}}":                     "true",
		"$$a":                               "$a",
		"${{$lvl} >=level {2} ? {a} : {b}}": "a",
	} {
		got, err := c.Expand(in)
		if err != nil || got != want {
			t.Errorf("Expand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"${a":               `truncated macro reference: "${a"`,
		"${}":               `empty macro name: "${}"`,
		"x$":                `empty macro name: "$"`,
		"${a!b}":            `attribute name syntax error at: "...a>>>!b"`,
		"${{a} ~ {b}}":      `"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...a}>>>~ {b}"`,
		"${{x} <level {2}}": `malformed compatibility level syntax: "x"`,
	} {
		if _, err := c.Expand(in); err == nil || err.Error() != want {
			t.Errorf("Expand(%q) error = %v; want %s", in, err, want)
		}
	}
}

func TestLoopIsFatal(t *testing.T) {
	dir := writeConf(t, "a = $myorigin\nmyorigin = $a\n", "")
	_, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "unreasonable macro call nesting") {
		t.Fatalf("loop: err = %v", err)
	}
}

func TestBadInput(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	cases := []struct{ name, mainCF, wantErr string }{
		{"missing =", "myhostname = a\nbogus line\n", "main.cf, line 2: missing '=' after attribute name: \"bogus line\""},
		{"no name", "= x\n", "main.cf, line 1: missing attribute name: \"= x\""},
		{"binary", "\x01\xff\x00=x\n", "main.cf, line 1: missing '=' after attribute name: \"\x01\xff\""},
		{"NUL first", "a = b\n\x00c = d\n", "main.cf, line 2: missing attribute name: \"\""},
		{"1MB name", big + "\n", "main.cf, line 1: missing '=' after attribute name"},
	}
	for _, tc := range cases {
		_, err := Load(writeConf(t, tc.mainCF, ""))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %.200v, want %s", tc.name, err, tc.wantErr)
		}
	}
	// CRLF, tabs, a 1 MB value: accepted.
	c := load(t, "myhostname\t=\tvm2.example.ops\r\nmyorigin = $myhostname \r\nmailbox_command = "+big+"\r\n")
	if c.Get("myorigin") != "vm2.example.ops" || len(c.Get("mailbox_command")) != 1<<20 {
		t.Errorf("CRLF/tab file: myorigin = %q", c.Get("myorigin"))
	}
	// Leading white space with nothing to continue: warning, line skipped.
	c = load(t, "  stray = 1\nmyorigin = b\n")
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], `logical line must not start with whitespace: "  stray = 1"`) {
		t.Errorf("warnings = %q", w)
	}
	// Missing file, and a directory in its place.
	if _, err := Load(filepath.Join(t.TempDir(), "nonexistent")); err == nil || !strings.HasSuffix(err.Error(), "main.cf: No such file or directory") {
		t.Errorf("missing file: %v", err)
	}
	d := t.TempDir()
	os.Mkdir(filepath.Join(d, "main.cf"), 0o755)
	if _, err := Load(d); err == nil || !strings.Contains(err.Error(), "read "+d+"/main.cf: Is a directory") {
		t.Errorf("directory: %v", err)
	}
}

func TestDuplicatesAndUnused(t *testing.T) {
	c, err := Load(writeConf(t, "myorigin = a\nfoo = 1\nmyorigin = b\nbar = x\nmydestination = $bar\nsmtpd_restriction_classes = cls\ncls = permit\nmua_x = y\nrelay_recipient_limit = 5\n",
		"submission inet n - n - - smtpd\n  -o smtpd_client_restrictions=$mua_x\nrelay unix - - n - - smtp\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Get("myorigin") != "b" {
		t.Errorf("last entry must win, got %q", c.Get("myorigin"))
	}
	if w := strings.Join(c.Warnings(), "\n"); !strings.Contains(w, "main.cf, line 3: overriding earlier entry: myorigin=a") {
		t.Errorf("warnings = %s", w)
	}
	if u := c.Unused(); strings.Join(u, " ") != "foo" {
		t.Errorf("Unused = %q, want [foo]", u)
	}
	if !c.Known("relay_recipient_limit") || c.Known("smtpd_recipient_limitx") {
		t.Error("per-service parameter of relay/unix not known")
	}
}

func TestMaster(t *testing.T) {
	dir := writeConf(t, "", "# comment\nsmtp      inet  n       -       n       -       -       smtpd\n"+
		"submission inet n - - - - smtpd\n  -o syslog_name=postfix/submission\n\t-o smtpd_sasl_auth_enable=yes\n"+
		"local unix - n n - - local\nmailman unix - n n - - pipe\n  flags=FR user=list argv=/x ${nexthop} ${user}\n")
	s, err := LoadMaster(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 4 || s[1].Name != "submission" || s[1].Line != 3 || len(s[1].Options) != 2 || s[1].Options[1] != [2]string{"smtpd_sasl_auth_enable", "yes"} {
		t.Fatalf("services = %+v", s)
	}
	if s[3].Command != "pipe" || strings.Join(s[3].Args, " ") != "flags=FR user=list argv=/x ${nexthop} ${user}" {
		t.Errorf("pipe args = %q", s[3].Args)
	}
	c, _ := Load(dir)
	if !s[1].Chrooted(c) || s[0].Chrooted(c) {
		t.Error("chroot '-' must mean y at level 0, n must mean n")
	}
	if got, un := MasterParams(s, []string{"submission/inet/syslog_name", "x/y/z"}); strings.Join(got, "") != "submission/inet/syslog_name = postfix/submission" || strings.Join(un, "") != "x/y/z" {
		t.Errorf("-P = %q, unmatched %q", got, un)
	}
	if _, err := LoadMaster(writeConf(t, "", "bad line\n")); err == nil || !strings.HasSuffix(err.Error(), "master.cf: line 1: bad field count") {
		t.Errorf("bad master.cf: %v", err)
	}
}

func TestEditKeepsLayoutAndMode(t *testing.T) {
	dir := writeConf(t, "# head\nmyhostname = a\n  b\n# mid\nmyorigin = x\nrelayhost=y", "")
	path := filepath.Join(dir, "main.cf")
	os.Chmod(path, 0o640)
	if err := Edit(dir, EditSet, []string{"myhostname=new", "mydomain = d.com", "relayhost ="}, func(s string) { t.Log(s) }); err != nil {
		t.Fatal(err)
	}
	want := "# head\nmyhostname = new\n# mid\nmyorigin = x\nrelayhost = \nmydomain = d.com\n"
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("after -e:\n%s\nwant:\n%s", b, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v", st.Mode())
	}
	Edit(dir, EditComment, []string{"myorigin"}, func(s string) { t.Log(s) })
	Edit(dir, EditRemove, []string{"relayhost"}, func(s string) { t.Log(s) })
	want = "# head\nmyhostname = new\n# mid\n#myorigin = x\nmydomain = d.com\n"
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("after -# and -X:\n%s", b)
	}
	if err := Edit(dir, EditSet, []string{"novalue"}, func(s string) { t.Log(s) }); err == nil || err.Error() != `missing '=' after attribute name: "novalue"` {
		t.Errorf("bad -e: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestConcurrentGet(t *testing.T) {
	c := load(t, "myhostname = h.example.com\n")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if i == 0 && j%50 == 0 {
					c.Set("relayhost", "[r.example.com]")
				}
				if c.Get("myorigin") != "h.example.com" {
					t.Error("wrong myorigin")
					return
				}
			}
		}(i)
	}
	wg.Wait()
}

func TestConfigDir(t *testing.T) {
	t.Setenv("MAIL_CONFIG", "/x")
	if ConfigDir("/y") != "/y" || ConfigDir("") != "/x" {
		t.Error("ConfigDir precedence")
	}
	t.Setenv("MAIL_CONFIG", "")
	if ConfigDir("") != "/etc/postfix" {
		t.Error("ConfigDir default")
	}
}
