package smtp

import (
	"net"
	"strings"

	"postdove/pkg/postconf"
)

// SelfFrom says whether an MX host is this machine, as Postfix decides
// it: its name is myhostname, or its address is one that inet_interfaces
// or proxy_interfaces lists ("all": any address of this machine's
// interfaces; "loopback-only": 127.0.0.1 and ::1).
func SelfFrom(get func(string) string) func(name string, ip net.IP) bool {
	myname := strings.ToLower(get("myhostname"))
	var ips []net.IP
	all := false
	for _, v := range append(postconf.SplitList(get("inet_interfaces")), postconf.SplitList(get("proxy_interfaces"))...) {
		switch strings.ToLower(v) {
		case "all":
			all = true
		case "loopback-only":
			ips = append(ips, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
		default:
			if ip := net.ParseIP(strings.Trim(v, "[]")); ip != nil {
				ips = append(ips, ip)
			} else if addrs, err := net.LookupIP(v); err == nil {
				ips = append(ips, addrs...)
			}
		}
	}
	if all {
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					ips = append(ips, n.IP)
				}
			}
		}
	}
	return func(name string, ip net.IP) bool {
		if strings.EqualFold(strings.TrimSuffix(name, "."), myname) {
			return true
		}
		for _, x := range ips {
			if x.Equal(ip) {
				return true
			}
		}
		return false
	}
}
