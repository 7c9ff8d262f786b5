package local

import (
	"strings"
	"testing"
)

// defaultFilter is Postfix's default command_expansion_filter and
// forward_expansion_filter.
const defaultFilter = "1234567890!@%-_=+:,./abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// FuzzExpansion feeds local(8)'s $name expansion (forward_path,
// luser_relay, command_execution_directory) and the command environment
// with arbitrary templates, recipients and senders: nothing panics, and
// every byte an address brings into an expansion or the environment is
// one the filter allows.
func FuzzExpansion(f *testing.F) {
	f.Add("$home/.forward${recipient_delimiter}${extension}", "alice+x@example.com", "bob@example.org")
	f.Add("${extension?{a}:{b}}${{$user}=={alice}?{y}:{n}}", "Alice+`id`@h", "a`touch x`@b")
	f.Add("$(", `"a b;c"@example.com`, `"x y"@z`)
	f.Add("${", "a+$(touch x)/y@b", "\n")
	f.Add("$$ ${user:x} ${user?} $(home)", "+@", "")
	f.Fuzz(func(t *testing.T, tmpl, address, sender string) {
		a := &Agent{Settings: Settings{RecipientDelimiter: "+-", CommandFilter: defaultFilter}}
		local, user, ext, domain, _ := a.localParts(address)
		u := &User{Name: user, Home: "/home/u", Shell: "/bin/sh"}
		a.expandRecipient(tmpl, address, local, user, ext, u, defaultFilter)
		out, _ := a.expandRecipient("$user$extension$local$recipient$domain$mailbox$recipient_delimiter",
			address, local, user, ext, u, defaultFilter)
		if i := strings.IndexFunc(out, func(r rune) bool { return !strings.ContainsRune(defaultFilter, r) }); i >= 0 {
			t.Fatalf("expansion %q of %q has %q", out, address, out[i:])
		}
		d := &attempt{a: a}
		b := branch{rcpt: Recipient{Address: address}, addr: address, sender: sender}
		for _, kv := range d.commandEnv(b, local, user, ext, domain, nil) {
			name, v, _ := strings.Cut(kv, "=")
			if name == "PATH" || name == "TZ" || name == "LANG" || name == "MAIL_CONFIG" {
				continue
			}
			if i := strings.IndexFunc(v, func(r rune) bool { return !strings.ContainsRune(defaultFilter, r) }); i >= 0 {
				t.Fatalf("%s of %q from %q has %q", kv, address, sender, v[i:])
			}
		}
	})
}
