package postqueue

import (
	"strings"
	"testing"
)

// The answers of Debian's Postfix 3.7 postqueue -s for each site.
func TestValidSite(t *testing.T) {
	for site, want := range map[string]bool{
		"example.com": true, "[1.2.3.4]": true, "[ipv6:::1]": true, "[IPv6:::1]": true, "xn--bcher-kva.example": true,
		strings.Repeat("a", 63) + ".com": true, "foo.123": true, "FOO.example": true, "a_b": true,
		"1.2.3.4": false, "123": false, "[1.2.3]": false, "a-.b": false, "a.-b": false, "-x": false,
		strings.Repeat("a", 64) + ".com": false, "foo.": false, ".foo": false, "foo..bar": false, "a@b": false,
		"é.com": false, "a b": false, "": false, "[]": false, "[::1]": false, "x:y": false, "a/b": false,
	} {
		if got := validSite(site); got != want {
			t.Errorf("validSite(%q) = %v, want %v", site, got, want)
		}
	}
}

func FuzzValidSite(f *testing.F) {
	for _, s := range []string{"example.com", "[ipv6:::1]", "[1.2.3.4]", "-", "[", "]", "[ipv6:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { validSite(s) })
}
