package maps

import (
	"strings"
	"testing"
)

func TestCIDR(t *testing.T) {
	tb, warns, err := patternsOpen(t, "cidr", "192.168.2.1/24 bad\n10.0.0.0/8 ten\r\n2001:db8::/32 v6\nif !172.16.0.0/12\n[1.2.3.4] not-172\nendif\n1.2.3.4 fallback\nendif\n0.0.0.0/0\t any  thing \n\xff\x00\n1.2.3.0/33 x\nif ::/0\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`cidr map F, line 1: non-null host address bits in "192.168.2.1/24", perhaps you should use "192.168.2.0/24" instead: skipping this rule`,
		"cidr map F, line 8: ENDIF without IF: skipping this rule",
		"cidr map F, line 10: bad address pattern: \"\xff\": skipping this rule",
		`cidr map F, line 11: bad mask length in "1.2.3.0/33": skipping this rule`,
		"cidr map F, line 12: IF has no matching ENDIF",
	}
	if strings.Join(warns, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
	expectLookup(t, tb, "10.9.8.7", "ten", true)
	expectLookup(t, tb, "192.168.2.5", "any  thing", true)
	expectLookup(t, tb, "1.2.3.4", "not-172", true)
	expectLookup(t, tb, "2001:DB8::1", "v6", true)
	expectLookup(t, tb, "::1", "", false)
	expectLookup(t, tb, "not-an-ip", "", false)
	expectLookup(t, tb, "1.2.3.04", "", false)
	if _, err := Open("cidr:"+t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "read error: Is a directory") {
		t.Errorf("directory: %v", err)
	}
	if _, err := Open("cidr:/nonexistent", Options{}); err == nil || err.Error() != "open /nonexistent: No such file or directory" {
		t.Errorf("missing: %v", err)
	}
}
