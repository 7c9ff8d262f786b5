package dovecot

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzIMAPCommand feeds the pre-login IMAP parser arbitrary input: it
// must never panic, never return more than maxLine bytes in an argument,
// and always make progress.
func FuzzIMAPCommand(f *testing.F) {
	for _, s := range []string{
		"a LOGIN alice secret\r\n", "a LOGIN {5}\r\nalice {6+}\r\nsecret\r\n", `a LOGIN "al\"ice" "x\\y"` + "\r\n",
		"a ID (\"name\" \"Thunderbird\" \"version\" \"1\")\r\n", "a AUTHENTICATE PLAIN AGEAYg==\r\n", "\r\n", "{3}\r\n",
		"a LOGIN {99999}\r\n", "a\"b c\r\n", "a LOGIN x {2}y\r\nzz\r\n", strings.Repeat("x", 9000) + "\r\nb NOOP\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := bufio.NewReaderSize(strings.NewReader(in), 64)
		for i := 0; i < 100; i++ {
			cmd, err := readIMAPCommand(r, func() error { return nil })
			for _, a := range cmd.args {
				if len(a) > maxLine {
					t.Fatalf("argument of %d bytes", len(a))
				}
			}
			if err == nil && (!validTag(cmd.tag) || cmd.name == "") {
				t.Fatalf("accepted %+v", cmd)
			}
			if err != nil && err != errSyntax && err != errTooLong {
				return
			}
		}
	})
}

// FuzzPOP3Command checks the POP3 line splitting.
func FuzzPOP3Command(f *testing.F) {
	for _, s := range []string{"USER alice\r\n", "PASS a b  c\r\n", "AUTH PLAIN =\r\n", "capa\n", "\r\n", strings.Repeat("y", 9000) + "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := bufio.NewReaderSize(strings.NewReader(in), 64)
		for {
			line, err := readLine(r)
			if err == errTooLong {
				continue
			}
			if err != nil {
				return
			}
			if len(line) > maxLine+1 {
				t.Fatalf("line of %d bytes", len(line))
			}
			name, args := pop3Command(line)
			if strings.ToUpper(name) != name {
				t.Fatalf("name %q", name)
			}
			for _, a := range args {
				if a == "" || strings.Contains(a, " ") {
					t.Fatalf("argument %q", a)
				}
			}
		}
	})
}
