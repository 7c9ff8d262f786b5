package aliases

import (
	"errors"
	"strings"
)

// Errors for an aliases(5) line that cannot be stored, worded as
// postalias words its warnings ("FILE, line N: need name:value pair").
var (
	ErrNeedPair = errors.New("need name:value pair")
	ErrNotLocal = errors.New("name must be local")
)

// ParseEntry splits one logical line of an aliases file into the alias
// name (unquoted, not yet case-folded) and its value as postalias stores
// it: tokens re-joined with ", " after commas and single spaces between
// words, quotes kept where needed.
func ParseEntry(line string) (name, value string, err error) {
	toks := scan(line)
	colon := -1
	for i, t := range toks {
		if t.kind == ':' {
			colon = i
			break
		}
	}
	if colon <= 0 || colon == len(toks)-1 {
		return "", "", ErrNeedPair
	}
	for _, t := range toks[:colon] {
		if t.kind == '@' {
			return "", "", ErrNotLocal
		}
	}
	return join(toks[:colon], false), join(toks[colon+1:], true), nil
}

// Kind is the type of one delivery target of an alias.
type Kind int

const (
	Address Kind = iota // a local or remote address
	Command             // |command: pipe the message to a shell command
	File                // /file: append the message to a file
	Include             // :include:/file: read more targets from a file
)

func (k Kind) String() string {
	switch k {
	case Command:
		return "command"
	case File:
		return "file"
	case Include:
		return "include"
	}
	return "address"
}

// Target is one delivery target; Value is the address, the command
// (without "|"), the file name, or the included file's name.
type Target struct {
	Kind  Kind
	Value string
}

// ParseTargets splits an alias value ("a, |cmd, /file, :include:/x") into
// typed targets. Quotes are removed ("|cmd arg" is the command "cmd arg");
// empty elements are dropped.
func ParseTargets(value string) []Target {
	var out []Target
	toks := scan(value)
	start := 0
	for i := 0; i <= len(toks); i++ {
		if i < len(toks) && toks[i].kind != ',' {
			continue
		}
		s := strings.TrimSpace(join(toks[start:i], false))
		start = i + 1
		if s == "" {
			continue
		}
		switch {
		case s[0] == '|':
			out = append(out, Target{Command, strings.TrimSpace(s[1:])})
		case len(s) >= 9 && strings.EqualFold(s[:9], ":include:"):
			out = append(out, Target{Include, strings.TrimSpace(s[9:])})
		case s[0] == '/':
			out = append(out, Target{File, s})
		default:
			out = append(out, Target{Address, s})
		}
	}
	return out
}
