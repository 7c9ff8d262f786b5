package imap

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	sep := rune(s.ns.sep)
	if len(patterns) == 0 {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: sep, Mailbox: ""})
	}
	names, err := s.store.List()
	if err != nil {
		return s.storeErr("", err)
	}
	subs, err := s.store.Subscriptions()
	if err != nil {
		return s.storeErr("", err)
	}
	exists := map[string]bool{}
	var all []string
	add := func(n string) {
		if _, ok := exists[n]; !ok {
			exists[n] = false
			all = append(all, n)
		}
	}
	for _, n := range names {
		add(n)
		exists[n] = true
		// Maildir++ has no folder for a parent level: Dovecot lists it
		// as \Noselect.
		for i := strings.IndexByte(n, '.'); i > 0; i = next(n, i) {
			add(n[:i])
		}
	}
	sort.Strings(all[1:])
	subscribed := map[string]bool{}
	for _, n := range subs {
		subscribed[n] = true
	}
	hasChildren := func(n string) bool {
		for _, o := range all {
			if strings.HasPrefix(o, n+".") {
				return true
			}
		}
		return false
	}
	extended := options.SelectSubscribed || options.SelectSpecialUse || options.SelectRecursiveMatch ||
		options.ReturnSubscribed || options.ReturnChildren || options.ReturnSpecialUse || options.ReturnStatus != nil
	showChildren := !extended || options.ReturnChildren
	showSpecial := !extended || options.ReturnSpecialUse || options.SelectSpecialUse
	candidates := all
	if options.SelectSubscribed {
		candidates = subs
	}
	for _, n := range candidates {
		name := s.ns.clientName(n)
		if !matchAny(name, sep, ref, patterns) {
			continue
		}
		data := &imap.ListData{Delim: sep, Mailbox: name}
		present, known := exists[n]
		switch {
		case !known:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		case !present:
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if showChildren && known {
			if hasChildren(n) {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
			} else {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
			}
		}
		if options.SelectSubscribed || options.ReturnSubscribed {
			if subscribed[n] {
				data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
			}
		}
		special := s.ns.specialUse(n)
		if options.SelectSpecialUse && len(special) == 0 {
			continue
		}
		if showSpecial {
			data.Attrs = append(data.Attrs, special...)
		}
		if options.ReturnStatus != nil && present {
			if mb, err := s.store.Mailbox(n); err == nil {
				if st, err := s.status(mb, name, options.ReturnStatus); err == nil {
					data.Status = st
				}
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// next is the index of the next '.' in n after i, or -1.
func next(n string, i int) int {
	j := strings.IndexByte(n[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// matchAny reports whether a client name matches one of the patterns;
// INBOX matches in any case.
func matchAny(name string, sep rune, ref string, patterns []string) bool {
	for _, p := range patterns {
		if imapserver.MatchList(name, sep, ref, p) {
			return true
		}
		if name == "INBOX" && imapserver.MatchList(name, sep, strings.ToUpper(ref), strings.ToUpper(p)) {
			return true
		}
	}
	return false
}
