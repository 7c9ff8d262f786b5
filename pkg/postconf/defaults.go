package postconf

import (
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// DefaultConfigDir is where main.cf lives when neither -c nor $MAIL_CONFIG
// says otherwise.
const DefaultConfigDir = "/etc/postfix"

// defaultDomain is Postfix's fallback for mydomain.
const defaultDomain = "localdomain"

var tableIndex = func() map[string]string {
	m := make(map[string]string, len(defaultTable)+len(differences))
	for _, kv := range defaultTable {
		m[kv[0]] = kv[1]
	}
	for _, kv := range differences {
		m[kv[0]] = kv[1]
	}
	return m
}()

// differences are postdove's deliberate departures from Debian's Postfix
// 3.7 defaults; compat/testdata/postconf/DIFFERENCES explains each one and
// the compat test checks the two lists agree.
var differences = [][2]string{
	// CentOS 7 ships Postfix 2.10, whose default this is, and its stock
	// main.cf sets no compatibility_level: at level 0 mynetworks and SASL
	// clients relay and any other client gets a temporary 454 4.7.1 Relay
	// access denied, so a sender whose relay host is not yet configured
	// keeps the mail queued. Postfix 3.7 leaves the list empty at level 0
	// and has this same value from level 1 on.
	{"smtpd_relay_restrictions", "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"},
	// CentOS 7 keeps mailboxes in /var/spool/mail, Debian in /var/mail.
	{"mail_spool_directory", "/var/spool/mail"},
}

// runtimeDefaults are computed on the machine; in is the lookup of the
// configuration they are evaluated in (nil: built-in defaults only).
var runtimeDefaults = map[string]func(in lookupFunc) string{
	"myhostname": func(lookupFunc) string { return systemHostname() },
	"mydomain": func(in lookupFunc) string {
		h := systemHostname()
		if in != nil {
			if v, ok := in("myhostname"); ok {
				h = v
			}
		}
		return domainOf(h)
	},
	"mynetworks": func(in lookupFunc) string {
		style, ifaces, protos := "subnet", "all", "all"
		if in != nil {
			x := &expander{lookup: in}
			style, _ = x.value("mynetworks_style", 0)
			ifaces, _ = x.value("inet_interfaces", 0)
			protos, _ = x.value("inet_protocols", 0)
		}
		return interfaceNetworks(style, SplitList(ifaces), SplitList(protos))
	},
	"process_id":   func(lookupFunc) string { return strconv.Itoa(os.Getpid()) },
	"process_name": func(lookupFunc) string { return filepath.Base(os.Args[0]) },
}

// systemHostname is myhostname's default: the kernel's host name, with
// ".localdomain" appended when it has no dot.
func systemHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	if !strings.Contains(h, ".") {
		h += "." + defaultDomain
	}
	return h
}

// domainOf is mydomain's default: myhostname minus its first label, when
// that leaves a name with a dot in it.
func domainOf(host string) string {
	_, rest, ok := strings.Cut(host, ".")
	if !ok || !strings.Contains(rest, ".") {
		return defaultDomain
	}
	return rest
}

// interfaceNetworks lists the networks of this machine's interfaces in
// Postfix's mynetworks format, for mynetworks_style host, subnet or class.
func interfaceNetworks(style string, ifaces, protos []string) string {
	addrs, _ := net.InterfaceAddrs()
	want := map[string]bool{} // interface addresses in use; nil: all
	for _, i := range ifaces {
		switch strings.ToLower(i) {
		case "all":
			want = nil
		case "loopback-only":
			want["127.0.0.1"], want["::1"] = true, true
		default:
			if ip := net.ParseIP(strings.Trim(i, "[]")); ip != nil {
				want[ip.String()] = true
			} else if hosts, err := net.LookupHost(i); err == nil {
				for _, h := range hosts {
					want[h] = true
				}
			}
		}
		if want == nil {
			break
		}
	}
	v4ok, v6ok := false, false
	for _, p := range protos {
		switch strings.ToLower(p) {
		case "all":
			v4ok, v6ok = true, true
		case "ipv4":
			v4ok = true
		case "ipv6":
			v6ok = true
		}
	}
	var v4, v6 []string
	seen := map[string]bool{}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ones, bits := ipn.Mask.Size()
		ip := ipn.IP
		if want != nil && !want[ip.String()] || ip.To4() != nil && !v4ok || ip.To4() == nil && !v6ok {
			continue
		}
		switch style {
		case "host":
			ones = bits
		case "class":
			if ip4 := ip.To4(); ip4 != nil {
				switch {
				case ip4[0] < 128:
					ones = 8
				case ip4[0] < 192:
					ones = 16
				case ip4[0] < 224:
					ones = 24
				}
			}
		}
		nw := ip.Mask(net.CIDRMask(ones, bits))
		var s string
		if ip4 := nw.To4(); ip4 != nil && bits == 32 {
			s = ip4.String() + "/" + strconv.Itoa(ones)
			if !seen[s] {
				v4 = append(v4, s)
			}
		} else {
			s = "[" + nw.String() + "]/" + strconv.Itoa(ones)
			if !seen[s] {
				v6 = append(v6, s)
			}
		}
		seen[s] = true
	}
	return strings.Join(append(v4, v6...), " ")
}

// perServiceSuffixes are the parameters Postfix adds for each master.cf
// service that runs a delivery agent, as NAME_suffix = $default.
var perServiceSuffixes = [][2]string{
	{"delivery_slot_cost", "$default_delivery_slot_cost"},
	{"delivery_slot_discount", "$default_delivery_slot_discount"},
	{"delivery_slot_loan", "$default_delivery_slot_loan"},
	{"destination_concurrency_failed_cohort_limit", "$default_destination_concurrency_failed_cohort_limit"},
	{"destination_concurrency_limit", "$default_destination_concurrency_limit"},
	{"destination_concurrency_negative_feedback", "$default_destination_concurrency_negative_feedback"},
	{"destination_concurrency_positive_feedback", "$default_destination_concurrency_positive_feedback"},
	{"destination_rate_delay", "$default_destination_rate_delay"},
	{"destination_recipient_limit", "$default_destination_recipient_limit"},
	{"extra_recipient_limit", "$default_extra_recipient_limit"},
	{"initial_destination_concurrency", "$initial_destination_concurrency"},
	{"minimum_delivery_slots", "$default_minimum_delivery_slots"},
	{"recipient_limit", "$default_recipient_limit"},
	{"recipient_refill_delay", "$default_recipient_refill_delay"},
	{"recipient_refill_limit", "$default_recipient_refill_limit"},
	{"transport_rate_delay", "$default_transport_rate_delay"},
}

// deliveryAgents are the master.cf commands that get per-service
// parameters; timeLimited ones also get NAME_time_limit.
var (
	deliveryAgents = map[string]bool{"smtp": true, "lmtp": true, "local": true, "virtual": true, "pipe": true, "error": true}
	timeLimited    = map[string]bool{"pipe": true, "spawn": true}
)

// serviceDefaults returns the per-service parameters for services; a
// built-in default (local_destination_recipient_limit = 1) wins.
func serviceDefaults(services []Service) map[string]string {
	m := map[string]string{}
	add := func(name, value string) {
		if _, builtin := tableIndex[name]; !builtin {
			m[name] = value
		}
	}
	for _, s := range services {
		if deliveryAgents[s.Command] {
			for _, kv := range perServiceSuffixes {
				add(s.Name+"_"+kv[0], kv[1])
			}
		}
		if timeLimited[s.Command] {
			add(s.Name+"_time_limit", "$command_time_limit")
		}
	}
	return m
}

// KnownNames lists every parameter with a built-in default, sorted.
func KnownNames() []string {
	names := make([]string, 0, len(tableIndex)+len(runtimeDefaults))
	for n := range tableIndex {
		names = append(names, n)
	}
	for n := range runtimeDefaults {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// builtinDefault is a parameter's built-in default; in is the
// configuration machine-dependent defaults are computed in (nil for -d).
func builtinDefault(name string, in lookupFunc) (string, bool) {
	if f, ok := runtimeDefaults[name]; ok {
		return f(in), true
	}
	v, ok := tableIndex[name]
	return v, ok
}
