package doveconf

import (
	"strings"
)

// MailLocation is a parsed mail_location (or namespace location):
// "maildir:~/Maildir:LAYOUT=fs:INDEX=/var/index/%u",
// "mbox:~/mail:INBOX=/var/mail/%u".
type MailLocation struct {
	Format  string            // maildir, mbox, sdbox, mdbox; "" to look for existing mail
	Root    string            // the mail root folder
	Inbox   string            // INBOX=: where INBOX is (mbox spool)
	Index   string            // INDEX=: where index files go
	Control string            // CONTROL=: where control files (uidlist, subscriptions) go
	Layout  string            // LAYOUT=: maildir++ (default) or fs
	Options map[string]string // the other KEY=value parts (and bare flags with "")
}

// ParseMailLocation splits a mail_location into its parts. A "::" in a
// part stands for a ':'.
func ParseMailLocation(s string) MailLocation {
	var ml MailLocation
	if s == "" {
		return ml
	}
	parts := splitColons(s)
	first := parts[0]
	if len(parts) == 1 && !isFormat(first) {
		ml.Root = first
		return ml
	}
	ml.Format = first
	if len(parts) > 1 {
		ml.Root = parts[1]
	}
	for _, p := range parts[min(2, len(parts)):] {
		k, v, _ := strings.Cut(p, "=")
		switch strings.ToUpper(k) {
		case "INBOX":
			ml.Inbox = v
		case "INDEX":
			ml.Index = v
		case "CONTROL":
			ml.Control = v
		case "LAYOUT":
			ml.Layout = v
		default:
			if ml.Options == nil {
				ml.Options = map[string]string{}
			}
			ml.Options[k] = v
		}
	}
	return ml
}

func isFormat(s string) bool {
	switch s {
	case "maildir", "mbox", "sdbox", "mdbox", "dbox", "imapc", "pop3c", "raw", "shared", "fail":
		return true
	}
	return false
}

// splitColons splits on ':' where "::" is a literal colon.
func splitColons(s string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			if i+1 < len(s) && s[i+1] == ':' {
				cur.WriteByte(':')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(parts, cur.String())
}

// Vars are the values of Dovecot's mail variables for one user.
type Vars struct {
	User string // %u: the full user name, "alice" or "alice@example.com"
	Home string // %h: the home folder
}

// Expand replaces %u, %n, %d, %h (and %{user}, %{username}, %{domain},
// %{home}, with the L and U case modifiers) and a leading "~/" in every
// path of ml.
func (ml MailLocation) Expand(v Vars) MailLocation {
	out := ml
	out.Root, out.Inbox, out.Index, out.Control = v.ExpandPath(ml.Root), v.ExpandPath(ml.Inbox), v.ExpandPath(ml.Index), v.ExpandPath(ml.Control)
	if ml.Options != nil {
		out.Options = map[string]string{}
		for k, val := range ml.Options {
			out.Options[k] = v.ExpandPath(val)
		}
	}
	return out
}

// ExpandPath expands the variables in s and a leading "~" (the home).
func (v Vars) ExpandPath(s string) string {
	s = v.Expand(s)
	if s == "~" {
		return v.Home
	}
	if rest, ok := strings.CutPrefix(s, "~/"); ok {
		return strings.TrimSuffix(v.Home, "/") + "/" + rest
	}
	return s
}

// Expand replaces Dovecot's %-variables in s; unknown ones are left alone.
func (v Vars) Expand(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	user, domain, _ := strings.Cut(v.User, "@")
	long := map[string]string{"user": v.User, "username": user, "domain": domain, "home": v.Home}
	short := map[byte]string{'u': v.User, 'n': user, 'd': domain, 'h': v.Home}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		j := i + 1
		mod := byte(0)
		if s[j] == 'L' || s[j] == 'U' {
			mod = s[j]
			j++
		}
		if j >= len(s) {
			b.WriteString(s[i:])
			break
		}
		val, ok := "", false
		end := j
		switch {
		case s[j] == '%' && mod == 0:
			val, ok = "%", true
		case s[j] == '{':
			if k := strings.IndexByte(s[j:], '}'); k > 0 {
				val, ok = long[s[j+1:j+k]]
				end = j + k
			}
		default:
			val, ok = short[s[j]]
		}
		if !ok {
			b.WriteByte(s[i])
			continue
		}
		switch mod {
		case 'L':
			val = strings.ToLower(val)
		case 'U':
			val = strings.ToUpper(val)
		}
		b.WriteString(val)
		i = end
	}
	return b.String()
}

// MailLocation returns the parsed mail_location setting.
func (s *Settings) MailLocation() MailLocation { return ParseMailLocation(s.Get("mail_location")) }
