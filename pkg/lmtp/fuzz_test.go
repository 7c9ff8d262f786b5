package lmtp

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzStripDetail: the +detail comes off the local part only, and an
// address without a delimiter is left alone.
func FuzzStripDetail(f *testing.F) {
	for _, s := range []string{"a+b@x", "a@x+y", "+a@x", "a", "a+b", "a-b+c@x", "@", ""} {
		f.Add(s, "+")
	}
	f.Add("a-b+c@x", "-+")
	f.Fuzz(func(t *testing.T, addr, delims string) {
		got := stripDetail(addr, delims)
		local, domain, ok := strings.Cut(addr, "@")
		gl, gd, gok := strings.Cut(got, "@")
		if ok != gok || domain != gd || !strings.HasPrefix(local, gl) {
			t.Fatalf("stripDetail(%q, %q) = %q", addr, delims, got)
		}
		if delims == "" || !strings.ContainsAny(local, delims) {
			if got != addr {
				t.Fatalf("stripDetail(%q, %q) = %q", addr, delims, got)
			}
		}
	})
}

// FuzzRequest: what a delivery process reads first never panics it, and
// a request it takes has settings it can use.
func FuzzRequest(f *testing.F) {
	f.Add(`{"User":"a","Home":"/h","Sender":"s@x","Rcpt":"a@x","Settings":{"mail_location":"maildir:~/Maildir"}}` + "\n")
	f.Add(`{"Settings":{"mail_location":"a\nb = c"}}` + "\n")
	f.Add(`{"Settings":{"x y":"1","mbox_lock_timeout":"5 mins"}}` + "\n")
	f.Add("{}")
	f.Fuzz(func(t *testing.T, in string) {
		req, set, err := readRequest(bufio.NewReader(strings.NewReader(in)))
		if err != nil {
			return
		}
		for k := range req.Settings {
			set.Get(k)
		}
		set.Duration("mbox_lock_timeout")
	})
}
