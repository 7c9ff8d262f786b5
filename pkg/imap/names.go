package imap

import (
	"errors"
	"strings"

	"github.com/emersion/go-imap/v2"

	"postdove/pkg/doveconf"
	"postdove/pkg/maildir"
)

// namespace is the user's private namespace as the client sees it.
type namespace struct {
	prefix    string // "" or e.g. "INBOX."
	sep       byte   // the hierarchy separator clients see
	mailboxes []doveconf.Mailbox
}

// newNamespace picks the inbox namespace among the configured ones (the
// first private one with inbox = yes, else the first private one).
func newNamespace(nss []doveconf.Namespace) namespace {
	ns := namespace{sep: '.'}
	var pick *doveconf.Namespace
	for i := range nss {
		n := &nss[i]
		if n.Type != "" && n.Type != "private" {
			continue
		}
		if pick == nil || n.Inbox && !pick.Inbox {
			pick = n
		}
	}
	if pick != nil {
		if pick.Separator != "" {
			ns.sep = pick.Separator[0]
		}
		ns.prefix = pick.Prefix
		ns.mailboxes = pick.Mailboxes
	}
	return ns
}

// invalidName is Dovecot's reply to a name it refuses.
func invalidName(why string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name: " + why}
}

// CheckName applies Dovecot's rules for a mailbox name given by a client
// (UTF-8, sep between levels) and returns the name the store uses (UTF-8,
// '.' between levels): no empty name or level, nothing that begins with
// the separator or '~', no '/', no control characters. "INBOX" in any
// case, alone or as the first level, becomes "INBOX".
func CheckName(name string, sep byte) (string, error) {
	switch {
	case name == "":
		return "", invalidName("Name is empty")
	case name[0] == sep:
		return "", invalidName("Begins with hierarchy separator")
	case strings.Contains(name, string([]byte{sep, sep})):
		return "", invalidName("Has adjacent hierarchy separators")
	case name[len(name)-1] == sep:
		return "", invalidName("Ends with hierarchy separator")
	case sep != '/' && strings.IndexByte(name, '/') >= 0:
		return "", invalidName("Name must not have '/' characters")
	case name[0] == '~':
		return "", invalidName("Begins with '~'")
	case sep != '.' && strings.IndexByte(name, '.') >= 0:
		return "", invalidName("Character not allowed in mailbox name: '.'")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return "", invalidName("Contains control characters")
		}
	}
	if sep != '.' {
		name = strings.ReplaceAll(name, string(sep), ".")
	}
	if first, _, _ := strings.Cut(name, "."); strings.EqualFold(first, "INBOX") {
		name = "INBOX" + name[len(first):]
	}
	if err := maildir.ValidName(name); err != nil {
		if strings.Contains(err.Error(), "too long") {
			return "", invalidName("Name is too long")
		}
		return "", invalidName("Contains invalid characters")
	}
	return name, nil
}

// errNoPrefix is a name outside the namespace's prefix.
var errNoPrefix = errors.New("outside the namespace")

// storeName turns a client's mailbox name into the store's.
func (ns *namespace) storeName(name string) (string, error) {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	if ns.prefix != "" {
		rest, ok := cutPrefixFold(name, ns.prefix)
		if !ok {
			return "", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent,
				Text: "Mailbox doesn't exist: " + name}
		}
		name = rest
	}
	return CheckName(name, ns.sep)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// clientName is the inverse of storeName.
func (ns *namespace) clientName(name string) string {
	if name == "INBOX" {
		return name
	}
	if ns.sep != '.' {
		name = strings.ReplaceAll(name, ".", string(ns.sep))
	}
	return ns.prefix + name
}

// specialUse returns the special-use attribute configured for a store name.
func (ns *namespace) specialUse(name string) []imap.MailboxAttr {
	var out []imap.MailboxAttr
	for _, m := range ns.mailboxes {
		if m.Name == ns.clientName(name) || m.Name == name {
			for _, a := range strings.Fields(m.SpecialUse) {
				out = append(out, imap.MailboxAttr(a))
			}
		}
	}
	return out
}
