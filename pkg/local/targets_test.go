package local

import (
	"postdove/pkg/aliases"
	"postdove/pkg/postconf"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFileTargets(t *testing.T) {
	tg := func(k aliases.Kind, v string) aliases.Target { return aliases.Target{Kind: k, Value: v} }
	A, C, F, I := aliases.Address, aliases.Command, aliases.File, aliases.Include
	for _, c := range []struct {
		in   string
		want []aliases.Target
	}{
		{"alice, bob@example.org", []aliases.Target{tg(A, "alice"), tg(A, "bob@example.org")}},
		{"alice\r\n\tbob\r\n", []aliases.Target{tg(A, "alice"), tg(A, "bob")}},
		{`"|/usr/bin/prog -a b, c", /var/log/mail.archive`, []aliases.Target{tg(C, "/usr/bin/prog -a b, c"), tg(F, "/var/log/mail.archive")}},
		{"|/bin/cat, :include:/etc/mail/list", []aliases.Target{tg(C, "/bin/cat"), tg(I, "/etc/mail/list")}},
		{"# a comment\n\\alice, <bob>", []aliases.Target{tg(A, "alice"), tg(A, "bob")}},
		{", ,,  \n\n", nil},
		{"", nil},
	} {
		if got := fileTargets(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("fileTargets(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	// A 1 MB line and binary junk do not crash.
	long := strings.Repeat("a", 1<<20)
	if got := fileTargets(long); len(got) != 1 || len(got[0].Value) != 1<<20 {
		t.Errorf("1 MB address: %d targets", len(got))
	}
	if got := fileTargets("\x00\xff\x01,\x80"); len(got) != 2 {
		t.Errorf("junk: %+v", got)
	}
}

// mainCF is a getter for SettingsFrom over Postfix's defaults with
// params set as in main.cf.
func mainCF(params map[string]string) func(string) string {
	cfg := postconf.Empty(postconf.DefaultConfigDir)
	for k, v := range params {
		cfg.Set(k, v)
	}
	return cfg.Get
}

func TestSettings(t *testing.T) {
	s, err := SettingsFrom(mainCF(map[string]string{
		"myhostname":           "vm2.example.ops",
		"mydomain":             "example.ops",
		"alias_maps":           "hash:/etc/aliases, nis:mail.aliases",
		"mailbox_command":      `/usr/libexec/dovecot/dovecot-lda -f "$SENDER" -a "$RECIPIENT"`,
		"mydestination":        "$myhostname, localhost.$mydomain",
		"command_time_limit":   "2m",
		"mail_spool_directory": "/var/spool/mail",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.AliasMaps, []string{"hash:/etc/aliases"}) {
		t.Errorf("alias_maps %v", s.AliasMaps)
	}
	if s.MailboxCommand != `/usr/libexec/dovecot/dovecot-lda -f "$SENDER" -a "$RECIPIENT"` {
		t.Errorf("mailbox_command was expanded: %q", s.MailboxCommand)
	}
	if !reflect.DeepEqual(s.MyDestination, []string{"vm2.example.ops", "localhost.example.ops"}) {
		t.Errorf("mydestination %v", s.MyDestination)
	}
	if s.CommandTimeLimit != 2*time.Minute || s.MyOrigin != "vm2.example.ops" || s.DefaultPrivs != "nobody" || !s.StrictOwnership {
		t.Errorf("settings %+v", s)
	}
	// Postfix's defaults, from postconf's table.
	const filter = "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	if s.CommandFilter != filter || s.ForwardFilter != filter ||
		!reflect.DeepEqual(s.ForwardPath, []string{"$home/.forward${recipient_delimiter}${extension}", "$home/.forward"}) ||
		!reflect.DeepEqual(s.AllowMailToCommands, []string{"alias", "forward"}) {
		t.Errorf("defaults: %+v", s)
	}
	// An empty value is a setting: "alias_maps =" means no alias tables,
	// "allow_mail_to_commands =" no commands, "forward_path =" no .forward.
	s, err = SettingsFrom(mainCF(map[string]string{"alias_maps": "", "allow_mail_to_commands": "", "forward_path": ""}))
	if err != nil || len(s.AliasMaps) != 0 || len(s.AllowMailToCommands) != 0 || len(s.ForwardPath) != 0 {
		t.Errorf("empty values: %+v, %v", s, err)
	}
	if s, _ := SettingsFrom(nil); !reflect.DeepEqual(s.AliasMaps, []string{"hash:/etc/aliases"}) {
		t.Errorf("no getter: alias_maps %v", s.AliasMaps)
	}
	if _, err := SettingsFrom(mainCF(map[string]string{"command_time_limit": "ten"})); err == nil || !strings.Contains(err.Error(), "command_time_limit") {
		t.Errorf("bad time accepted: %v", err)
	}
	if _, err := SettingsFrom(mainCF(map[string]string{"owner_request_special": "maybe"})); err == nil {
		t.Error("bad boolean accepted")
	}
}

// default_privs naming root, or an unknown account, is fatal, in
// Postfix's words.
func TestSettingsDefaultPrivs(t *testing.T) {
	for privs, want := range map[string]string{
		"root":           "file /etc/postfix/main.cf: parameter default_privs: user root has privileged user ID",
		"pdt-no-such-id": "file /etc/postfix/main.cf: parameter default_privs: unknown user name value: pdt-no-such-id",
	} {
		_, err := SettingsFrom(mainCF(map[string]string{"default_privs": privs}))
		if err == nil || err.Error() != want {
			t.Errorf("default_privs = %s: %v, want %s", privs, err, want)
		}
	}
	cfg := postconf.Empty("/var/tmp/conf")
	cfg.Set("default_privs", "root")
	if _, err := SettingsFrom(cfg.Get); err == nil || !strings.HasPrefix(err.Error(), "file /var/tmp/conf/main.cf: ") {
		t.Errorf("config_directory not named: %v", err)
	}
	// Settings made by hand never give root's privileges.
	a := &Agent{Settings: Settings{DefaultPrivs: "root"}}
	if c := a.defaultPrivs(); c.uid == 0 || c.gid == 0 {
		t.Errorf("defaultPrivs for root: %+v", c)
	}
}

func TestExpandRecipient(t *testing.T) {
	a := &Agent{Settings: Settings{RecipientDelimiter: "+"}}
	u := &User{Name: "alice", Home: "/home/alice", Shell: "/bin/sh"}
	fp := "$home/.forward${recipient_delimiter}${extension}"
	const filter = "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for _, c := range []struct {
		v, addr, local, user, ext, want string
		ok                              bool
	}{
		{fp, "alice+x@h", "alice+x", "alice", "x", "/home/alice/.forward+x", true},
		// No extension: the entry names an unknown attribute and is skipped.
		{fp, "alice@h", "alice", "alice", "", "/home/alice/.forward", false},
		{"${extension?ext-$extension}${extension:none}", "a@h", "a", "a", "", "none", true},
		// An address is data: never expanded again, and censored.
		{"$home/.forward+$extension", "alice+$(touch x)@h", "alice+$(touch x)", "alice", "$(touch x)", "/home/alice/.forward+__touch_x_", true},
		{"$home/.f-$extension", "alice+a;b`c'd\"e\nf@h", "alice+a;b`c'd\"e\nf", "alice", "a;b`c'd\"e\nf", "/home/alice/.f-a_b_c_d_e_f", true},
		{"$home/$user/${unknown}", "alice@h", "alice", "alice", "", "/home/alice/alice/", false},
	} {
		got, ok := a.expandRecipient(c.v, c.addr, c.local, c.user, c.ext, u, filter)
		if got != c.want || ok != c.ok {
			t.Errorf("expand %q for %q: %q, %v; want %q, %v", c.v, c.addr, got, ok, c.want, c.ok)
		}
	}
}

func TestFormatDelay(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 5 * time.Millisecond: "0", 50 * time.Millisecond: "0.05", 300 * time.Millisecond: "0.3",
		1200 * time.Millisecond: "1.2", 2 * time.Second: "2", 12400 * time.Millisecond: "12",
	} {
		if got := FormatDelay(d); got != want {
			t.Errorf("FormatDelay(%v) = %q, want %q", d, got, want)
		}
	}
}
