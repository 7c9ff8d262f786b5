package smtp

import "testing"

func TestParseNexthop(t *testing.T) {
	for _, c := range []struct {
		in   string
		lmtp bool
		want Nexthop
	}{
		{"example.com", false, Nexthop{Host: "example.com", Port: 25}},
		{"[127.0.0.2]", false, Nexthop{Host: "127.0.0.2", Port: 25, NoMX: true}},
		{"[127.0.0.2]:2525", false, Nexthop{Host: "127.0.0.2", Port: 2525, NoMX: true}},
		{"mx.example.com:587", false, Nexthop{Host: "mx.example.com", Port: 587}},
		{"[mail.example.com]:submission", false, Nexthop{Host: "mail.example.com", Port: 587, NoMX: true}},
		{"unix:/run/dovecot/lmtp", true, Nexthop{Unix: "/run/dovecot/lmtp", Port: 24, NoMX: true}},
		{"inet:127.0.0.1:2400", true, Nexthop{Host: "127.0.0.1", Port: 2400, NoMX: true}},
		{"mailbox.example.com", true, Nexthop{Host: "mailbox.example.com", Port: 24, NoMX: true}},
	} {
		got, err := ParseNexthop(c.in, c.lmtp)
		c.want.Given = c.in
		if err != nil || got != c.want {
			t.Errorf("%q: got %+v %v, want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "[x", "[x]y", "h:0", "h:99999", "h:nosuchservice", ":25", "[]"} {
		if _, err := ParseNexthop(bad, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseNexthop("unix:", true); err == nil {
		t.Error("unix: without a path accepted")
	}
}

func FuzzParseNexthop(f *testing.F) {
	for _, s := range []string{"example.com", "[127.0.0.2]:2525", "unix:/x", "inet:h:24", "h:smtp", "[::1]:25"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, lmtp bool) {
		n, err := ParseNexthop(s, lmtp)
		if err == nil && n.Unix == "" && (n.Host == "" || n.Port <= 0 || n.Port > 65535) {
			t.Fatalf("%q: %+v", s, n)
		}
	})
}
