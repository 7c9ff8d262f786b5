package maildir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// SubscriptionsName is Dovecot's file of subscribed mailboxes, in the
// Maildir root.
const SubscriptionsName = "subscriptions"

// ParseSubscriptions reads a subscriptions file. Dovecot 2.3 writes
// "V\t2", an empty line, then one name a line in modified UTF-7 with a tab
// between hierarchy levels; older files have no header and use '.'.
// Names come back in UTF-8 with '.' between levels; ones that do not
// decode are skipped.
func ParseSubscriptions(data []byte) []string {
	lines := strings.Split(string(data), "\n")
	v2 := len(lines) > 0 && lines[0] == "V\t2"
	if v2 {
		lines = lines[1:]
	}
	var names []string
	seen := map[string]bool{}
	for _, l := range lines {
		if l == "" {
			continue
		}
		if v2 {
			parts := strings.Split(l, "\t")
			ok := true
			for _, p := range parts {
				if p == "" || strings.Contains(p, ".") {
					ok = false
				}
			}
			if !ok {
				continue
			}
			l = strings.Join(parts, ".")
		}
		name, err := DecodeMUTF7(l)
		if err != nil || ValidName(name) != nil || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names
}

// MarshalSubscriptions writes names (UTF-8, '.' between levels) in
// Dovecot 2.3's format.
func MarshalSubscriptions(names []string) []byte {
	var b strings.Builder
	b.WriteString("V\t2\n\n")
	for _, n := range names {
		b.WriteString(strings.ReplaceAll(EncodeMUTF7(n), ".", "\t"))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Subscriptions returns the subscribed mailbox names.
func (s *Store) Subscriptions() ([]string, error) {
	b, err := os.ReadFile(filepath.Join(s.Root, SubscriptionsName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseSubscriptions(b), nil
}

// Subscribe adds (on) or removes name from the subscriptions, replacing
// the file through a temporary one.
func (s *Store) Subscribe(name string, on bool) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if strings.EqualFold(name, "INBOX") {
		name = "INBOX"
	}
	unlock, err := s.lockRoot()
	if err != nil {
		return err
	}
	defer unlock()
	names, err := s.Subscriptions()
	if err != nil {
		return err
	}
	var out []string
	found := false
	for _, n := range names {
		if n == name {
			found = true
			if !on {
				continue
			}
		}
		out = append(out, n)
	}
	if on && !found {
		out = append(out, name)
	}
	if on == found {
		return nil
	}
	return writeAtomic(filepath.Join(s.Root, SubscriptionsName), MarshalSubscriptions(out), s.opts)
}
