package sendmail

import (
	"reflect"
	"strings"
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

// TestParseQueueAndDaemonFlags holds what Debian's Postfix 3.7 sendmail
// does with -q, -qR, -qI, -qinterval, -bd, -bl, -bh and -I, alone and
// combined: the last mode wins, -qR/-qI need delivery mode, -qinterval
// turns anything but daemon mode into a no-op.
func TestParseQueueAndDaemonFlags(t *testing.T) {
	cases := []struct {
		args  string
		mode  Mode
		fatal string
		warn  string
	}{
		{"-I", ModeNewAliases, "", ""},
		{"-bd", ModeDaemon, "", ""},
		{"-bl", ModeDaemon, "", ""},
		{"-bh x", ModeIgnore, "", ""},
		{"-q5m", ModeIgnore, "", ""},
		{"-q5m x", ModeIgnore, "", ""},
		{"-q1h30m -bp", ModeIgnore, "", ""},
		{"-bs -q5m", ModeIgnore, "", ""},
		{"-bd -q5m", ModeDaemon, "", ""},
		{"-q5m -bd", ModeDaemon, "", ""},
		{"-q", ModeFlush, "", ""},
		{"-q -bp", ModePrintQueue, "", ""},
		{"-bp -q", ModeFlush, "", ""},
		{"-q -bd", ModeDaemon, "", "ignoring -q option in daemon mode"},
		{"-bd -q", ModeDaemon, "", "ignoring -q option in daemon mode"},
		{"-qRexample.com", ModeFlushSite, "", ""},
		{"-qIABCDEF", ModeFlushID, "", ""},
		{"-qIfoo -qRbar", ModeFlushSite, "", ""},
		{"-qRfoo -q5m", ModeIgnore, "", ""},
		{"-qR", "", "specify: -qRsitename", ""},
		{"-qI", "", "specify: -qIqueueid", ""},
		{"-qS", "", "-qS is not implemented", ""},
		{"-qbogus", "", "-qb is not implemented", ""},
		{"-bp -qRfoo", "", "-qR can be used only in delivery mode", ""},
		{"-bp -qIfoo -qRbar", "", "-qR can be used only in delivery mode", ""},
		{"-q -qIfoo", "", "-qI can be used only in delivery mode", ""},
		{"-bd -qRfoo x", "", "-qR can be used only in delivery mode", ""},
		{"-I x", "", "alias initialization mode requires no recipient", ""},
		{"-bd x", "", "daemon mode requires no recipient", ""},
		{"-q x", "", "flush queue mode requires no recipient", ""},
		{"-qRfoo x", "", "flush site requires no recipient", ""},
		{"-qIABC x", "", "flush queue_id requires no recipient", ""},
		{"-bp x", "", "display queue mode requires no recipient", ""},
		{"-bs x", "", "stand-alone mode requires no recipient", ""},
		{"-bz", "", "unsupported: -bz", ""},
	}
	for _, c := range cases {
		o, err := Parse(append([]string{"sendmail"}, strings.Fields(c.args)...))
		if c.fatal != "" {
			if err == nil || err.Error() != c.fatal {
				t.Errorf("%s: error %v, want %q", c.args, err, c.fatal)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.args, err)
			continue
		}
		if o.Mode != c.mode || strings.Join(o.Warnings, "|") != c.warn {
			t.Errorf("%s: mode %q warnings %q, want %q %q", c.args, o.Mode, o.Warnings, c.mode, c.warn)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"-q", "-qRx", "-qI", "-q5m -bd", "-bd -q x", "-oi -t -f a", "-N never,x", "-I", "--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, args string) {
		o, err := Parse(append([]string{"sendmail"}, strings.Fields(args)...))
		if (o == nil) == (err == nil) {
			t.Fatalf("%q: options %v, error %v", args, o, err)
		}
	})
}
