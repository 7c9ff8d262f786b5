package maps

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// memTable is an indexed-style table: keys are looked up as they are,
// folded to lower case.
type memTable map[string]string

func (m memTable) Lookup(k string) (string, bool, error) {
	v, ok := m[strings.ToLower(k)]
	return v, ok, nil
}
func (m memTable) Close() error { return nil }

func TestAccessAddressOrder(t *testing.T) {
	got := AddressKeys("joe+list@mail.example.com", "+", false)
	want := []string{"joe+list@mail.example.com", "joe@mail.example.com", "mail.example.com", ".example.com", ".com", "joe+list@", "joe@"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
	tb := memTable{"example.com": "REJECT no", ".example.com": "OK", "joe@": "550 5.7.1 go away"}
	a, k, ok, _ := LookupAddress([]Table{tb}, "x@sub.example.com", false)
	if !ok || k != ".example.com" || a.Kind != "OK" {
		t.Errorf("without parent matching: %v %q %v", a, k, ok)
	}
	a, k, ok, _ = LookupAddress([]Table{tb}, "x@sub.example.com", true)
	if !ok || k != "example.com" || a.Kind != "REJECT" || a.Text != "no" {
		t.Errorf("with parent matching: %v %q %v", a, k, ok)
	}
	a, k, ok, _ = LookupAddress([]Table{tb}, "Joe@other.org", true)
	if !ok || k != "Joe@" || a.Kind != "NNN" || a.Code != 550 || a.Text != "5.7.1 go away" {
		t.Errorf("user@: %v %q %v", a, k, ok)
	}
}

func TestAccessClientOrderAndCIDRKeysInIndexedTables(t *testing.T) {
	got := ClientKeys("mx.mail.example.com", "192.168.2.10", false)
	want := []string{"mx.mail.example.com", ".mail.example.com", ".example.com", ".com", "192.168.2.10", "192.168.2", "192.168", "192"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
	// A network/prefix key in an indexed table never matches.
	tb := memTable{"192.168.2.0/24": "REJECT"}
	if _, k, ok, _ := LookupClient([]Table{tb}, "unknown", "192.168.2.10", true); ok {
		t.Errorf("cidr-style key matched in an indexed table (key %q)", k)
	}
	tb["192.168"] = "DUNNO"
	if a, k, ok, _ := LookupClient([]Table{tb}, "unknown", "192.168.2.10", true); !ok || k != "192.168" || a.Kind != "DUNNO" {
		t.Errorf("prefix lookup: %v %q %v", a, k, ok)
	}
	// The same network in a cidr: table matches.
	dir := t.TempDir()
	p := filepath.Join(dir, "c")
	os.WriteFile(p, []byte("192.168.2.0/24 REJECT net\n"), 0o644)
	ct, err := Open("cidr:"+p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a, _, ok, _ := LookupClient([]Table{ct}, "host.example", "192.168.2.10", true); !ok || a.Kind != "REJECT" || a.Text != "net" {
		t.Errorf("cidr: %v %v", a, ok)
	}
	if v6 := addressPrefixes("2001:db8::1"); !reflect.DeepEqual(v6, []string{"2001:db8::1", "2001:db8:", "2001:db8", "2001"}) {
		t.Errorf("ipv6 prefixes %q", v6)
	}
}

func TestAccessParseAction(t *testing.T) {
	for in, want := range map[string]Action{
		"OK":                        {Kind: "OK"},
		"reject Go away":            {Kind: "REJECT", Text: "Go away"},
		"450 4.7.1 later":           {Kind: "NNN", Code: 450, Text: "4.7.1 later"},
		"12345":                     {Kind: "OK"},
		"REDIRECT a@b":              {Kind: "REDIRECT", Text: "a@b"},
		"defer_if_permit":           {Kind: "DEFER_IF_PERMIT"},
		"permit_mynetworks, reject": {Kind: "RESTRICTION", Text: "permit_mynetworks, reject"},
	} {
		got := ParseAction(in)
		want.Raw = in
		if got != want {
			t.Errorf("ParseAction(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// In a key-value table (texthash here; hash: is the same lookup on an
// index, checked end to end in compat/ and by postfix check's lint), a
// network key is just a string and never matches a client address.
func TestAccessNetworkKeyInKeyValueTable(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "access")
	os.WriteFile(src, []byte("192.168.2.0/24 REJECT\n"), 0o644)
	tb, err := Open("texthash:"+src, Options{FoldCase: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	if _, k, ok, _ := LookupClient([]Table{tb}, "", "192.168.2.10", true); ok {
		t.Errorf("network key matched in texthash (key %q)", k)
	}
}
