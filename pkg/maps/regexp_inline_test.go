package maps

import "testing"

// An inline pattern table, as in smtpd_forbidden_commands' default
// (Postfix 3.7: postmap -q . 'regexp:{{/^[^A-Z]/ Bogus}}' prints Bogus).
func TestInlineRegexp(t *testing.T) {
	tb, err := Open("regexp:{{/^[^A-Z]/ Bogus}, {/^GET / web}}", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	for key, want := range map[string]string{".": "Bogus", "Subject: x": "", "GET / HTTP/1.0": "web", "ehlo x": ""} {
		v, ok, err := tb.Lookup(key)
		if err != nil || v != want || ok != (want != "") {
			t.Errorf("%q: got %q %v %v, want %q", key, v, ok, err, want)
		}
	}
}
