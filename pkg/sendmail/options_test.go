package sendmail

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	o, err := Parse([]string{"sendmail", "-oi", "-fbob@x", "-F", "Bob", "-N", "success,delay", "-t", "--", "-alice", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.IgnoreDots || o.Sender != "bob@x" || o.FullName != "Bob" || !o.Extract || o.DSNNotify != "success,delay" ||
		!reflect.DeepEqual(o.Recipients, []string{"-alice", "carol"}) || o.Mode != ModeDeliver {
		t.Errorf("%+v", o)
	}
	for argv, mode := range map[string]Mode{"mailq": ModePrintQueue, "newaliases": ModeNewAliases, "/usr/bin/mailq": ModePrintQueue} {
		if o, err := Parse([]string{argv}); err != nil || o.Mode != mode {
			t.Errorf("%s: %v %v", argv, o, err)
		}
	}
	if o, _ := Parse([]string{"sendmail", "-bs"}); o.Mode != ModeSMTP {
		t.Errorf("-bs")
	}
	if o, _ := Parse([]string{"sendmail", "-q"}); o.Mode != ModeFlush {
		t.Errorf("-q")
	}
	if o, _ := Parse([]string{"sendmail", "-f", "<>", "x"}); !o.SenderSet || o.Sender != "" {
		t.Errorf("-f <>: %+v", o)
	}
	if o, _ := Parse([]string{"sendmail", "-N", "bogus", "x"}); len(o.Warnings) != 2 || o.DSNNotify != "" {
		t.Errorf("-N bogus: %+v", o.Warnings)
	}
	if _, err := Parse([]string{"sendmail", "-Z"}); err == nil {
		t.Errorf("-Z accepted")
	}
}
