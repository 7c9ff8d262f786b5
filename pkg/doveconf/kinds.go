package doveconf

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// kind is a setting's type, which decides how its value is checked.
type kind uint8

const (
	kindString kind = iota
	kindBool        // yes or no
	kindUint        // a number
	kindTime        // a time interval: "2 secs", "1 hours"
	kindSize        // a size: "64 k", "256 M"
	kindEnum        // one of a few words (enumValues)
	kindPort        // a port number
	kindMode        // an octal file mode
)

// setting is one setting's name, built-in default and type.
type setting struct {
	name, def string
	kind      kind
}

// enumValues lists the words each enumerated setting accepts, the default
// first, as Dovecot 2.3 defines them. The key is the setting's name, or
// "kind/name" for a setting inside a section.
var enumValues = map[string][]string{
	"ssl":                        {"yes", "no", "required"},
	"doveadm_ssl":                {"no", "ssl", "starttls"},
	"imapc_ssl":                  {"no", "imaps", "starttls"},
	"pop3c_ssl":                  {"no", "pop3s", "starttls"},
	"submission_relay_ssl":       {"no", "smtps", "starttls"},
	"submission_ssl":             {"no", "smtps", "starttls"},
	"imap_fetch_failure":         {"disconnect-immediately", "disconnect-after", "no-after"},
	"lmtp_hdr_delivery_address":  {"final", "none", "original"},
	"lock_method":                {"fcntl", "flock", "dotlock"},
	"mail_fsync":                 {"optimized", "always", "never"},
	"mbox_md5":                   {"apop3d", "all"},
	"pop3_delete_type":           {"default", "flag", "expunge"},
	"pop3_uidl_duplicates":       {"allow", "rename"},
	"namespace/list":             {"yes", "no", "children"},
	"namespace/type":             {"private", "shared", "public"},
	"mailbox/auto":               {"no", "create", "subscribe"},
	"passdb/auth_verbose":        {"default", "yes", "no"},
	"userdb/auth_verbose":        {"default", "yes", "no"},
	"passdb/skip":                {"never", "authenticated", "unauthenticated"},
	"userdb/skip":                {"never", "found", "notfound"},
	"passdb/result_success":      resultValues,
	"passdb/result_failure":      resultValues,
	"passdb/result_internalfail": resultValues,
	"userdb/result_success":      resultValues,
	"userdb/result_failure":      resultValues,
	"userdb/result_internalfail": resultValues,
}

var resultValues = []string{"return-ok", "return", "return-fail", "continue", "continue-ok", "continue-fail"}

// check returns Dovecot's complaint about value for a setting of kind k
// (enumKey names it in enumValues), or "" when the value is acceptable.
// "<file" values and values with "$" or "%" variables are checked when
// they are used, not here.
func check(k kind, enumKey, value string) string {
	if strings.HasPrefix(value, "<") {
		return ""
	}
	switch k {
	case kindBool:
		if _, ok := parseBool(value); !ok {
			return "Invalid boolean value: " + value + " (use yes or no)"
		}
	case kindUint:
		if _, err := strconv.ParseUint(value, 10, 64); err != nil {
			return "Invalid number " + value + ": Not a valid number"
		}
	case kindTime:
		d, ok := parseTime(value)
		if !ok {
			return "Invalid time interval: " + value
		}
		if d != 0 && strings.Trim(value, "0123456789") == "" {
			return "Time interval '" + value + "' is missing units (add e.g. 's' for seconds)"
		}
		if d%time.Second != 0 || strings.Contains(strings.ToLower(value), "ms") {
			return "Milliseconds not supported for this setting: " + value
		}
	case kindSize:
		if _, ok := parseSize(value); !ok {
			return "Invalid size: " + value
		}
	case kindPort:
		if n, err := strconv.ParseUint(value, 10, 16); err != nil || n > 65535 {
			return "Invalid port number " + value
		}
	case kindEnum:
		if vals, ok := enumValues[enumKey]; ok && !slices.Contains(vals, value) {
			return "Invalid value: " + value
		}
	}
	return ""
}

// normalize writes a checked value the way doveconf shows it: "yes" or
// "no", "5 secs", "1 weeks", "64 k", "1536 B".
func normalize(k kind, value string) string {
	if strings.HasPrefix(value, "<") {
		return value
	}
	switch k {
	case kindBool:
		if b, ok := parseBool(value); ok && b {
			return "yes"
		} else if ok {
			return "no"
		}
	case kindTime:
		if d, ok := parseTime(value); ok {
			return largestUnit(uint64(d/time.Second), []unit{{7 * 24 * 3600, "weeks"}, {24 * 3600, "days"}, {3600, "hours"}, {60, "mins"}, {1, "secs"}})
		}
	case kindSize:
		if n, ok := parseSize(value); ok {
			return largestUnit(n, []unit{{1 << 40, "T"}, {1 << 30, "G"}, {1 << 20, "M"}, {1 << 10, "k"}, {1, "B"}})
		}
	}
	return value
}

type unit struct {
	size uint64
	name string
}

// largestUnit writes n in the largest unit that divides it; 0 is "0".
func largestUnit(n uint64, units []unit) string {
	if n == 0 {
		return "0"
	}
	for _, u := range units {
		if n%u.size == 0 {
			return strconv.FormatUint(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatUint(n, 10)
}

// parseBool reads yes/no as Dovecot does (in any case).
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "yes", "y", "1":
		return true, true
	case "no", "n", "0":
		return false, true
	}
	return false, false
}

// timeUnits are the suffixes Dovecot accepts in a time interval.
var timeUnits = map[string]time.Duration{
	"": time.Second, "ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond,
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

// sizeUnits are the suffixes Dovecot accepts in a size.
var sizeUnits = map[string]uint64{
	"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40,
}

// parseTime reads "2 secs", "1h", "30" (seconds) and sums like "1h 30m".
func parseTime(s string) (time.Duration, bool) {
	var total time.Duration
	ok := scanUnits(s, func(n uint64, unit string) bool {
		u, found := timeUnits[strings.ToLower(unit)]
		total += time.Duration(n) * u
		return found
	})
	return total, ok
}

// parseSize reads "64 k", "256M", "18446744073709551615 B".
func parseSize(s string) (uint64, bool) {
	var total uint64
	ok := scanUnits(s, func(n uint64, unit string) bool {
		u, found := sizeUnits[strings.ToLower(unit)]
		total += n * u
		return found
	})
	return total, ok
}

// scanUnits splits s into number-unit pairs and hands each to f.
func scanUnits(s string, f func(n uint64, unit string) bool) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return false
		}
		n, err := strconv.ParseUint(s[:i], 10, 64)
		if err != nil {
			return false
		}
		s = strings.TrimLeft(s[i:], " \t")
		j := 0
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
			j++
		}
		if !f(n, s[:j]) {
			return false
		}
		s = strings.TrimLeft(s[j:], " \t")
	}
	return true
}
