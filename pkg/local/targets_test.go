package local

import (
	"postdove/pkg/aliases"
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

func TestSettings(t *testing.T) {
	s, err := SettingsFrom(func(n string) string {
		return map[string]string{
			"myhostname":           "vm2.example.ops",
			"mydomain":             "example.ops",
			"alias_maps":           "hash:/etc/aliases, nis:mail.aliases",
			"mailbox_command":      `/usr/libexec/dovecot/dovecot-lda -f "$SENDER" -a "$RECIPIENT"`,
			"mydestination":        "$myhostname, localhost.$mydomain",
			"command_time_limit":   "2m",
			"mail_spool_directory": "/var/spool/mail",
		}[n]
	})
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
	// "alias_maps =" in main.cf: no alias tables, not the default.
	s, err = SettingsFrom(func(n string) string { return "" })
	if err != nil || len(s.AliasMaps) != 0 || s.MailSpoolDirectory != "/var/mail" {
		t.Errorf("empty alias_maps: %v, %v, spool %q", s.AliasMaps, err, s.MailSpoolDirectory)
	}
	if s, _ := SettingsFrom(nil); !reflect.DeepEqual(s.AliasMaps, []string{"hash:/etc/aliases"}) {
		t.Errorf("no getter: alias_maps %v", s.AliasMaps)
	}
	if _, err := SettingsFrom(func(n string) string {
		if n == "command_time_limit" {
			return "ten"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "command_time_limit") {
		t.Errorf("bad time accepted: %v", err)
	}
	if _, err := SettingsFrom(func(n string) string {
		if n == "owner_request_special" {
			return "maybe"
		}
		return ""
	}); err == nil {
		t.Error("bad boolean accepted")
	}
}

func TestExpandRecipient(t *testing.T) {
	a := &Agent{Settings: Settings{RecipientDelimiter: "+"}}
	u := &User{Name: "alice", Home: "/home/alice", Shell: "/bin/sh"}
	fp := "$home/.forward${recipient_delimiter}${extension}"
	if got := a.expandRecipient(fp, "alice+x@h", "alice+x", "alice", "x", u); got != "/home/alice/.forward+x" {
		t.Errorf("got %q", got)
	}
	if got := a.expandRecipient(fp, "alice@h", "alice", "alice", "", u); got != "/home/alice/.forward" {
		t.Errorf("got %q", got)
	}
	if got := a.expandRecipient("${extension?ext-$extension}${extension:none}", "a@h", "a", "a", "", u); got != "none" {
		t.Errorf("conditional got %q", got)
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
