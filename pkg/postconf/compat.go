package postconf

import "strings"

// legacyDefault is a default that differs below some compatibility level.
type legacyDefault struct {
	name, value string
	below       [3]int // applies while compatibility_level < below
	// matters reports whether the legacy value can change what this
	// configuration does; nil means always.
	matters func(c *Config) bool
}

func setIn(names ...string) func(c *Config) bool {
	return func(c *Config) bool {
		for _, n := range names {
			if v, ok := c.Raw(n); ok && strings.TrimSpace(v) != "" {
				return true
			}
		}
		return false
	}
}

func mentions(words ...string) func(c *Config) bool {
	return func(c *Config) bool {
		c.mu.RLock()
		defer c.mu.RUnlock()
		for _, v := range c.set {
			for _, w := range words {
				if strings.Contains(v, w) {
					return true
				}
			}
		}
		return false
	}
}

var legacyDefaults = []legacyDefault{
	{"append_dot_mydomain", "yes", [3]int{1}, nil},
	{"smtputf8_enable", "no", [3]int{1}, nil},
	{"mynetworks_style", "subnet", [3]int{2}, func(c *Config) bool { _, set := c.Raw("mynetworks"); return !set }},
	{"relay_domains", "$mydestination", [3]int{2}, nil},
	{"smtpd_tls_fingerprint_digest", "md5", [3]int{3, 6}, mentions("check_ccert_access", "permit_tls_clientcerts", "relay_clientcerts")},
	{"smtp_tls_fingerprint_digest", "md5", [3]int{3, 6}, mentions("fingerprint")},
	{"lmtp_tls_fingerprint_digest", "md5", [3]int{3, 6}, mentions("fingerprint")},
	{"respectful_logging", "no", [3]int{3, 6}, nil},
	{"smtpd_relay_before_recipient_restrictions", "no", [3]int{3, 6}, setIn("smtpd_recipient_restrictions")},
}

// CompatLevel is compatibility_level in force, parsed; a malformed value
// counts as 0.
func (c *Config) CompatLevel() [3]int {
	l, _ := parseLevel(strings.TrimSpace(c.Get("compatibility_level")))
	return l
}

// CompatNotice is the log text for one backwards-compatible default, with
// what it was used for: CompatNotice("relay_domains", "$mydestination",
// `accept mail for domain "foo.com"`).
func CompatNotice(name, value, usedFor string) string {
	s := "using backwards-compatible default setting " + name + "=" + value
	if usedFor != "" {
		s += " to " + usedFor
	}
	return s
}

// CompatNotices lists, once each, the backwards-compatible default
// settings in force that matter for this main.cf and master.cf, in
// Postfix's log wording ("using backwards-compatible default setting
// relay_domains=$mydestination"). Daemons log them once at start-up, or
// use CompatNotice to say what a setting was used for.
func (c *Config) CompatNotices() []string {
	lvl := c.CompatLevel()
	var out []string
	for _, d := range legacyDefaults {
		if compareLevels(lvl, d.below) >= 0 {
			continue
		}
		if _, set := c.Raw(d.name); set {
			continue
		}
		if d.matters != nil && !d.matters(c) {
			continue
		}
		out = append(out, CompatNotice(d.name, d.value, ""))
	}
	if compareLevels(lvl, [3]int{1}) < 0 {
		for _, s := range c.services {
			if s.Chroot == "-" {
				out = append(out, CompatNotice("chroot", "y", ""))
				break
			}
		}
	}
	return out
}
