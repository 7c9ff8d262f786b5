package local

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Settings are the main.cf parameters local(8) obeys, already $-expanded.
type Settings struct {
	MyHostname          string   // myhostname
	MyOrigin            string   // myorigin: domain for unqualified alias targets
	MyDestination       []string // mydestination: domains that are local
	RecipientDelimiter  string   // recipient_delimiter (each character is a delimiter)
	AliasMaps           []string // alias_maps
	ForwardPath         []string // forward_path, still holding $home etc.
	MailboxCommandMaps  []string // mailbox_command_maps
	MailboxCommand      string   // mailbox_command
	HomeMailbox         string   // home_mailbox
	MailSpoolDirectory  string   // mail_spool_directory
	DefaultPrivs        string   // default_privs
	LuserRelay          string   // luser_relay, still holding $user etc.
	CommandTimeLimit    time.Duration
	AllowMailToCommands []string // alias, forward, include
	AllowMailToFiles    []string // alias, forward, include
	DeliveredHeader     []string // prepend_delivered_header: command, file, forward
	OwnerRequestSpecial bool     // owner_request_special
	ExpandOwnerAlias    bool     // expand_owner_alias
	LocalCommandShell   string   // local_command_shell
	CommandDirectory    string   // command_execution_directory
	StrictOwnership     bool     // strict_mailbox_ownership
}

// defaults are Postfix 3.7's built-in values for the parameters above,
// used when the getter passed to SettingsFrom returns "".
var defaults = map[string]string{
	"myhostname":                  "localhost",
	"mydestination":               "$myhostname, localhost.$mydomain, localhost",
	"alias_maps":                  "hash:/etc/aliases",
	"forward_path":                "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
	"mail_spool_directory":        "/var/mail",
	"default_privs":               "nobody",
	"command_time_limit":          "1000s",
	"allow_mail_to_commands":      "alias, forward",
	"allow_mail_to_files":         "alias, forward",
	"prepend_delivered_header":    "command, file, forward",
	"owner_request_special":       "yes",
	"expand_owner_alias":          "no",
	"strict_mailbox_ownership":    "yes",
	"recipient_delimiter":         "",
	"mailbox_command":             "",
	"mailbox_command_maps":        "",
	"home_mailbox":                "",
	"luser_relay":                 "",
	"local_command_shell":         "",
	"command_execution_directory": "",
}

// emptyIsNone are the parameters whose empty value is a setting, not a
// missing one: "alias_maps =" means no alias tables in Postfix.
var emptyIsNone = map[string]bool{"alias_maps": true}

// SettingsFrom reads the local(8) parameters through get, which returns a
// parameter's expanded value (postconf's Config.Get, which gives the
// built-in default for a parameter main.cf does not set). Parameters that
// get returns empty take Postfix's default, except alias_maps, where empty
// means no alias tables; $name references left in a value are expanded
// with get as well.
func SettingsFrom(get func(name string) string) (Settings, error) {
	val := func(name string) string {
		v := ""
		if get != nil {
			v = get(name)
		}
		if v == "" && (get == nil || !emptyIsNone[name]) {
			v = defaults[name]
		}
		switch name {
		case "forward_path", "luser_relay", "mailbox_command":
			return v // raw: expanded per recipient, or by the shell
		}
		return expandParams(v, func(n string) (string, bool) {
			if get == nil {
				return "", false
			}
			x := get(n)
			return x, x != ""
		})
	}
	var s Settings
	s.MyHostname = val("myhostname")
	s.MyOrigin = val("myorigin")
	if s.MyOrigin == "" {
		s.MyOrigin = s.MyHostname
	}
	s.MyDestination = splitList(val("mydestination"))
	s.RecipientDelimiter = val("recipient_delimiter")
	for _, m := range splitList(val("alias_maps")) {
		if !strings.HasPrefix(m, "nis:") {
			s.AliasMaps = append(s.AliasMaps, m)
		}
	}
	s.ForwardPath = splitList(val("forward_path"))
	s.MailboxCommandMaps = splitList(val("mailbox_command_maps"))
	s.MailboxCommand = val("mailbox_command")
	s.HomeMailbox = val("home_mailbox")
	s.MailSpoolDirectory = val("mail_spool_directory")
	s.DefaultPrivs = val("default_privs")
	s.LuserRelay = val("luser_relay")
	d, err := parseDuration(val("command_time_limit"), 's')
	if err != nil {
		return s, fmt.Errorf("bad time value: command_time_limit = %s", val("command_time_limit"))
	}
	s.CommandTimeLimit = d
	s.AllowMailToCommands = splitList(val("allow_mail_to_commands"))
	s.AllowMailToFiles = splitList(val("allow_mail_to_files"))
	s.DeliveredHeader = splitList(val("prepend_delivered_header"))
	for _, b := range []struct {
		name string
		p    *bool
	}{{"owner_request_special", &s.OwnerRequestSpecial}, {"expand_owner_alias", &s.ExpandOwnerAlias}, {"strict_mailbox_ownership", &s.StrictOwnership}} {
		v, err := parseBool(val(b.name))
		if err != nil {
			return s, fmt.Errorf("bad boolean configuration: %s = %s", b.name, val(b.name))
		}
		*b.p = v
	}
	s.LocalCommandShell = val("local_command_shell")
	s.CommandDirectory = val("command_execution_directory")
	return s, nil
}

// splitList splits a Postfix list on commas and white space.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("bad boolean %q", v)
}

// parseDuration reads a Postfix time value: a number with an optional
// unit s, m, h, d or w; def is the unit when none is given.
func parseDuration(v string, def byte) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, fmt.Errorf("empty time value")
	}
	unit := def
	if c := v[len(v)-1]; c < '0' || c > '9' {
		unit = c
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad time value %q", v)
	}
	mult := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("bad time unit %q", unit)
	}
	return time.Duration(n) * mult, nil
}

// expandParams expands $name, ${name}, $(name), ${name?text} and
// ${name:text} in v; lookup reports a name's value and whether it is
// non-empty. Unknown names expand to "". Expansion of the values that
// lookup returns is not recursive: callers pass already-expanded values.
func expandParams(v string, lookup func(string) (string, bool)) string {
	if !strings.Contains(v, "$") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '$' || i+1 >= len(v) {
			b.WriteByte(c)
			continue
		}
		n := v[i+1]
		switch {
		case n == '$':
			b.WriteByte('$')
			i++
		case n == '{' || n == '(':
			closer := byte('}')
			if n == '(' {
				closer = ')'
			}
			end := strings.IndexByte(v[i+2:], closer)
			if end < 0 {
				b.WriteString(v[i:])
				return b.String()
			}
			inner := v[i+2 : i+2+end]
			i += 2 + end
			name, op, text := inner, byte(0), ""
			if k := strings.IndexAny(inner, "?:"); k >= 0 {
				name, op, text = inner[:k], inner[k], inner[k+1:]
			}
			val, set := lookup(name)
			switch op {
			case '?':
				if set {
					b.WriteString(expandParams(text, lookup))
				}
			case ':':
				if !set {
					b.WriteString(expandParams(text, lookup))
				}
			default:
				b.WriteString(val)
			}
		case isNameByte(n):
			j := i + 1
			for j < len(v) && isNameByte(v[j]) {
				j++
			}
			val, _ := lookup(v[i+1 : j])
			b.WriteString(val)
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
