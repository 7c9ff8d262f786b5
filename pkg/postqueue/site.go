package postqueue

import (
	"net/netip"
	"strings"
)

// validSite tells whether postqueue -s accepts site, as Postfix's does: a
// host name (labels of letters, digits, '-' and '_', at most 63
// characters, not starting or ending with '-'; not all digits and dots;
// at most 255 characters) or an address literal [ipv4] or [ipv6:addr].
func validSite(site string) bool {
	if strings.HasPrefix(site, "[") && strings.HasSuffix(site, "]") {
		lit := site[1 : len(site)-1]
		if len(lit) > 5 && strings.EqualFold(lit[:5], "ipv6:") {
			a, err := netip.ParseAddr(lit[5:])
			return err == nil && a.Is6() && a.Zone() == ""
		}
		a, err := netip.ParseAddr(lit)
		return err == nil && a.Is4()
	}
	if site == "" || len(site) > 255 || strings.Trim(site, "0123456789.") == "" {
		return false
	}
	for _, label := range strings.Split(site, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
