package postfix

import (
	"strings"
	"testing"
)

func TestSuggest(t *testing.T) {
	known := []string{"mydestination", "mydomain", "myorigin", "mynetworks", "home_mailbox", "relayhost"}
	for in, want := range map[string]string{
		"mydestinaton": "mydestination",
		"mydomian":     "mydomain", // transposition
		"myorgin":      "myorigin",
		"relay_host":   "relayhost",
		"homemailbox":  "home_mailbox",
		"zzqqxx":       "",
		"mailbox_cmd":  "",
		"mynetworks":   "mynetworks",
		"x":            "",
	} {
		if got := Suggest(in, known); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSourceKeys(t *testing.T) {
	in := "# comment\r\n\n192.168.2.0/24\tOK\r\n  continued line\nroot: marc\n" + strings.Repeat("y", 5<<20) + " long\nlast"
	var got []string
	if err := sourceKeys(strings.NewReader(in), true, func(n int, k string) {
		got = append(got, k[:min(len(k), 8)])
	}); err != nil {
		t.Fatal(err)
	}
	want := "192.168.|root|yyyyyyyy|last"
	if strings.Join(got, "|") != want {
		t.Errorf("keys %q, want %q", strings.Join(got, "|"), want)
	}
}
