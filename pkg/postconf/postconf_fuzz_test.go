package postconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzMainCF loads a fuzzed main.cf and expands every parameter it sets
// and a fuzzed text. Properties: no panic, no hang (expansion loops end
// in an error), and a loaded value never holds a NUL byte.
func FuzzMainCF(f *testing.F) {
	f.Add("myhostname = vm2.example.ops\nmyorigin = $myhostname\n", "${myorigin}")
	f.Add("a = $b\nb = ${a?x}\n", "$a")
	f.Add("x = ${y?{$z}:{w}} ${{$a} == {b}?yes:no}\n  cont\n# c\n", "${x:$x}$(y)")
	f.Add("  stray\nmydomain = d\x00junk\n\x00\n", "$$ $")
	f.Add("relayhost = [a]:25\nfoo = ${mydomain?{${relayhost}}:{}}\n", "${{1} < {2}?a:b}")
	f.Fuzz(func(t *testing.T, mainCF, text string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(mainCF), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(dir)
		if err != nil {
			return
		}
		for _, name := range c.NonDefault() {
			v, _ := c.GetErr(name)
			if strings.IndexByte(v, 0) >= 0 {
				t.Fatalf("%s = %q holds a NUL", name, v)
			}
		}
		c.Expand(text)
	})
}

// FuzzMasterCF parses a fuzzed master.cf. Properties: no panic; each
// entry as postconf -M prints it parses back to the same entry.
func FuzzMasterCF(f *testing.F) {
	f.Add("smtp inet n - y - - smtpd\n  -o syslog_name=postfix/submission\n  -o smtpd_tls_security_level=encrypt\n")
	f.Add("pickup unix n - n 60 1 pickup\n# comment\nlocal unix - n n - - local -v\n")
	f.Add("pipe unix - n n - - pipe\n  flags=FR user=list argv=/usr/bin/x ${nexthop} ${user}\n  -o\n")
	f.Add("bad\n  \x00\nsmtp inet n - n - - \x00smtpd\n")
	f.Fuzz(func(t *testing.T, masterCF string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "master.cf"), []byte(masterCF), 0o644); err != nil {
			t.Fatal(err)
		}
		services, err := LoadMaster(dir)
		if err != nil {
			return
		}
		for _, s := range services {
			for _, fold := range []bool{false, true} {
				text := s.Format(fold)
				again, err := parseService(strings.ReplaceAll(text, "\n", " "))
				if err != nil {
					t.Fatalf("%q formats as %q: %v", masterCF, text, err)
				}
				again.File, again.Line = s.File, s.Line
				if !reflect.DeepEqual(again, s) {
					t.Fatalf("%q formats as %q, which parses to\n%#v\nnot\n%#v", masterCF, text, again, s)
				}
			}
		}
	})
}
