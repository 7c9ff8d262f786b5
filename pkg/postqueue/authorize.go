package postqueue

import (
	"fmt"
	"os"
	"os/user"
	"postdove/pkg/syserr"
	"strconv"
	"strings"

	"postdove/pkg/maps"
	"postdove/pkg/postconf"
)

// What a user asks postqueue for, for Authorize.
const (
	ActionView  = "view"  // -p, -j: authorized_mailq_users
	ActionFlush = "flush" // -f, -i, -s: authorized_flush_users
)

// Authorize checks that the user who runs postqueue (the real uid) may
// view (ActionView) or flush (ActionFlush) the mail queue, by
// authorized_mailq_users or authorized_flush_users. Root and mail_owner
// are always allowed, as in Postfix. A refusal is a *Fatal in Postfix's
// words: "User nobody(65534) is not allowed to view the mail queue".
func Authorize(cfg *postconf.Config, action string) error {
	uid := os.Getuid()
	if uid == 0 {
		return nil
	}
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	if owner := cfg.Get("mail_owner"); owner == name {
		return nil
	}
	param := "authorized_mailq_users"
	if action == ActionFlush {
		param = "authorized_flush_users"
	}
	ok, err := MatchUser(cfg.Get(param), name)
	if err != nil {
		return &Fatal{Text: err.Error()}
	}
	if !ok {
		return &Fatal{Text: fmt.Sprintf("User %s(%d) is not allowed to %s the mail queue", name, uid, action)}
	}
	return nil
}

// MatchUser reports whether user name is in list, a Postfix string list
// such as authorized_submit_users: names (case-insensitive), type:table
// lookups (a key found matches, so static:anyone matches everyone),
// /file/name (more patterns, read from the file), each possibly negated
// with '!'. The first pattern that matches decides; no match is a no.
func MatchUser(list, name string) (bool, error) {
	patterns, err := expandFiles(postconf.SplitList(list), 0)
	if err != nil {
		return false, err
	}
	name = strings.ToLower(name)
	for _, pat := range patterns {
		negate := false
		for strings.HasPrefix(pat, "!") {
			negate = !negate
			pat = strings.TrimSpace(pat[1:])
		}
		found, err := matchOne(pat, name)
		if err != nil {
			return false, err
		}
		if found {
			return !negate, nil
		}
	}
	return false, nil
}

// expandFiles replaces each /file/name pattern by the patterns in the
// file, in place, as Postfix does; '#' starts a comment.
func expandFiles(patterns []string, depth int) ([]string, error) {
	var out []string
	for _, pat := range patterns {
		if !strings.HasPrefix(pat, "/") {
			out = append(out, pat)
			continue
		}
		if depth > 10 {
			return nil, fmt.Errorf("%s: too many levels of file inclusion", pat)
		}
		b, err := os.ReadFile(pat)
		if err != nil {
			return nil, fmt.Errorf("open file %s: %s", pat, syserr.Text(err))
		}
		var inner []string
		for _, line := range strings.Split(string(b), "\n") {
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			inner = append(inner, postconf.SplitList(line)...)
		}
		more, err := expandFiles(inner, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

func matchOne(pat, name string) (bool, error) {
	switch {
	case pat == "":
		return false, nil
	case strings.Contains(pat, ":"):
		t, err := maps.Open(pat, maps.Options{FoldCase: true})
		if err != nil {
			return false, err
		}
		defer t.Close()
		_, found, err := t.Lookup(name)
		if err != nil {
			return false, fmt.Errorf("%s: table lookup problem", pat)
		}
		return found, nil
	default:
		return strings.EqualFold(pat, name), nil
	}
}
