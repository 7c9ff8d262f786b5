package dovecot

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
)

// maxLine bounds a pre-login command line and a literal in it, as
// Dovecot's login processes bound what an unauthenticated client may send.
const maxLine = 8192

var (
	errTooLong = errors.New("line too long")
	errSyntax  = errors.New("syntax error")
)

// readLine reads one line ending in LF (a CR before it is dropped) of at
// most maxLine bytes. A longer line is consumed and reported as errTooLong.
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	tooLong := false
	for {
		part, err := r.ReadSlice('\n')
		if !tooLong {
			if len(b)+len(part) > maxLine+2 {
				tooLong, b = true, nil
			} else {
				b = append(b, part...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(b) > 0 && !tooLong {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		break
	}
	if tooLong {
		return "", errTooLong
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// imapCommand is one pre-login IMAP command.
type imapCommand struct {
	tag, name string
	args      []string // atoms, quoted strings and literals; "(" and ")" as they come
}

// readIMAPCommand reads a command, with its literals: a synchronizing
// literal ({n}) is acknowledged through cont before its bytes are read,
// a non-synchronizing one ({n+}, LITERAL+) is not. A syntax error comes
// back with the tag when there was one.
func readIMAPCommand(r *bufio.Reader, cont func() error) (imapCommand, error) {
	var cmd imapCommand
	line, err := readLine(r)
	if err != nil {
		return cmd, err
	}
	var words []string
	for {
		rest, lit, ok, err := tokenize(line, &words)
		if err != nil {
			return withTag(cmd, words), err
		}
		if !ok {
			break
		}
		if lit.sync && cont != nil {
			if err := cont(); err != nil {
				return cmd, err
			}
		}
		b := make([]byte, lit.n)
		if _, err := io.ReadFull(r, b); err != nil {
			return cmd, err
		}
		words = append(words, string(b))
		more, err := readLine(r)
		if err != nil {
			return cmd, err
		}
		if rest != "" {
			return withTag(cmd, words), errSyntax
		}
		line = more
	}
	if len(words) < 2 || words[1] == "" {
		return withTag(cmd, words), errSyntax
	}
	cmd.tag, cmd.name, cmd.args = words[0], strings.ToUpper(words[1]), words[2:]
	if !validTag(cmd.tag) {
		return imapCommand{}, errSyntax
	}
	return cmd, nil
}

func withTag(cmd imapCommand, words []string) imapCommand {
	if len(words) > 0 && validTag(words[0]) {
		cmd.tag = words[0]
	}
	return cmd
}

// validTag reports whether s is an IMAP tag: ASTRING-CHARs but "+".
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\+`, c) >= 0 {
			return false
		}
	}
	return true
}

type literal struct {
	n    int
	sync bool
}

// tokenize splits line into words appended to *words. When the line ends
// in a literal announcement it returns ok with the literal's size; rest is
// what followed the announcement (nothing, in a well-formed command).
func tokenize(line string, words *[]string) (rest string, lit literal, ok bool, err error) {
	i := 0
	for i < len(line) {
		switch c := line[i]; {
		case c == ' ':
			i++
		case c == '(' || c == ')':
			*words = append(*words, line[i:i+1])
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' {
					j++
					if j == len(line) || (line[j] != '\\' && line[j] != '"') {
						return "", lit, false, errSyntax
					}
				}
				b.WriteByte(line[j])
			}
			if j == len(line) {
				return "", lit, false, errSyntax
			}
			*words = append(*words, b.String())
			i = j + 1
		case c == '{':
			end := strings.IndexByte(line[i:], '}')
			if end < 0 || i+end != len(line)-1 {
				return "", lit, false, errSyntax
			}
			spec := line[i+1 : i+end]
			spec, plus := strings.CutSuffix(spec, "+")
			n, perr := strconv.Atoi(spec)
			if perr != nil || n < 0 || spec == "" || spec[0] == '+' || spec[0] == '-' {
				return "", lit, false, errSyntax
			}
			if n > maxLine {
				return "", lit, false, errTooLong
			}
			return "", literal{n: n, sync: !plus}, true, nil
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '(' && line[j] != ')' && line[j] != '"' && line[j] != '{' {
				j++
			}
			if j == i {
				return "", lit, false, errSyntax
			}
			*words = append(*words, line[i:j])
			i = j
		}
	}
	return "", lit, false, nil
}

// pop3Command splits a POP3 line into the upper-cased command and its
// arguments.
func pop3Command(line string) (name string, args []string) {
	f := strings.Split(line, " ")
	name = strings.ToUpper(f[0])
	for _, a := range f[1:] {
		if a != "" {
			args = append(args, a)
		}
	}
	return name, args
}
