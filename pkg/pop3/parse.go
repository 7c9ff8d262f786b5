package pop3

import (
	"strconv"
	"strings"
)

// splitCommand splits a command line into the upper-cased command name and
// its arguments (everything after the first space).
func splitCommand(line string) (name, args string) {
	name, args, _ = strings.Cut(line, " ")
	return strings.ToUpper(name), args
}

// msgnumError is a bad message number, worded as Dovecot's replies.
type msgnumError string

func (e msgnumError) Error() string { return string(e) }

// parseMsgnum reads the message number at the start of args, as Dovecot's
// pop3 does: decimal digits, then the end of the line (last) or a space
// before the next argument. It returns the number and the text after it
// (spaces skipped).
func parseMsgnum(args string, last bool) (uint32, string, error) {
	if args == "" || args[0] < '0' || args[0] > '9' {
		return 0, "", msgnumError("Invalid message number: " + args)
	}
	i := 0
	for i < len(args) && args[i] >= '0' && args[i] <= '9' {
		i++
	}
	n, err := strconv.ParseUint(args[:i], 10, 32)
	rest := args[i:]
	if err != nil {
		return 0, "", msgnumError("Message number too large: " + rest)
	}
	if last {
		if rest != "" {
			return 0, "", msgnumError("Noise after message number: " + rest)
		}
		return uint32(n), "", nil
	}
	if rest == "" || rest[0] != ' ' {
		return 0, "", msgnumError("Noise after message number: " + rest)
	}
	return uint32(n), strings.TrimLeft(rest, " "), nil
}

// parseSize reads TOP's line count: decimal digits and nothing else.
func parseSize(args string) (uint64, error) {
	if args == "" || strings.Trim(args, "0123456789") != "" {
		return 0, msgnumError("Invalid size: " + args)
	}
	n, err := strconv.ParseUint(args, 10, 64)
	if err != nil {
		return 0, msgnumError("Size too large: " + args)
	}
	return n, nil
}

// expand replaces the %-variables of a pop3_uidl_format or
// pop3_logout_format: %c, %{name}, with an optional 0 and width ("%08u")
// and X for lower-case hexadecimal, as Dovecot 2.3 writes it. Unknown
// variables are left as they are.
func expand(format string, value func(name string) (uint64, string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			b.WriteByte(format[i])
			continue
		}
		j := i + 1
		zero := j < len(format) && format[j] == '0'
		start := j
		for j < len(format) && format[j] >= '0' && format[j] <= '9' {
			j++
		}
		width, _ := strconv.Atoi(format[start:j])
		hex := j < len(format) && format[j] == 'X'
		if hex {
			j++
		}
		if j >= len(format) {
			b.WriteString(format[i:])
			break
		}
		name, end := format[j:j+1], j
		if format[j] == '{' {
			k := strings.IndexByte(format[j:], '}')
			if k < 0 {
				b.WriteString(format[i:])
				break
			}
			name, end = format[j+1:j+k], j+k
		}
		if name == "%" {
			b.WriteByte('%')
			i = end
			continue
		}
		n, s, ok := value(name)
		if !ok {
			b.WriteByte('%')
			continue
		}
		if s == "" {
			if hex {
				s = strconv.FormatUint(n, 16)
			} else {
				s = strconv.FormatUint(n, 10)
			}
		}
		if pad := width - len(s); pad > 0 && width < 1024 {
			c := " "
			if zero {
				c = "0"
			}
			s = strings.Repeat(c, pad) + s
		}
		b.WriteString(s)
		i = end
	}
	return b.String()
}
