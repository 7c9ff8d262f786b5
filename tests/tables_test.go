package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// TestAliasDatabaseUnavailable: a missing or unreadable alias database
// defers the mail (it stays in the queue and mailq shows why), with
// Postfix's maillog lines and the command that rebuilds an unreadable
// one; the alias database Postfix's own postalias wrote (Berkeley DB)
// then delivers it, and a rebuilt one is used without a reload.
func TestAliasDatabaseUnavailable(t *testing.T) {
	l := labStart(t, "", "")
	alice, bob := l.user("pdtalice"), l.user("pdtbob")
	l.setAliases("team: " + alice.Name + "\n")
	db := l.Aliases + ".db"
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	if res := l.mail("for the team\n", "-s", "team mail", "team"); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	id := l.waitLog(`postfix/local\[\d+\]: ([0-9A-F]+): to=<team@vm2\.example\.ops>, orig_to=<team>, relay=local, .*dsn=4\.3\.0, status=deferred \(alias database unavailable\)`)[1]
	log := l.ReadMaillog()
	for _, want := range []string{
		"postfix/local[", "]: error: open database " + db + ": No such file or directory\n",
		"]: warning: hash:" + l.Aliases + " is unavailable. open database " + db + ": No such file or directory\n",
		"]: warning: hash:" + l.Aliases + ": lookup of 'team' failed\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("maillog lacks %q", want)
		}
	}
	l.waitDeferred("alias database unavailable")
	res := oracle.Run(l.binCmd("mailq"), "")
	if !regexp.MustCompile(`(?m)^` + id + ` .*\n +\(alias database unavailable\)\n +team@vm2\.example\.ops\n`).MatchString(res.Stdout) {
		t.Errorf("mailq does not show the reason:\n%s%s", res.Stdout, res.Stderr)
	}

	// A file that is no database: deferred again, with the fix.
	os.WriteFile(db, []byte(strings.Repeat("not a database ", 100)), 0o644)
	l.must(l.Command("postqueue", "-f"), "")
	l.waitLog(`warning: ` + regexp.QuoteMeta(db) + ` cannot be read; run "postalias ` + regexp.QuoteMeta(l.Aliases) + `" to rebuild it`)
	if l.mbox(alice.Name) != "" {
		t.Fatal("delivered through an unreadable alias database")
	}

	// Postfix's own postalias (Berkeley DB, keys with their NUL, the "@"
	// entry): delivered at the next queue run, no reload.
	o := oracle.Get(t)
	postalias := func() {
		t.Helper()
		cmd := o.Command("postalias", "-c", l.ConfigDir, l.Aliases)
		cmd.Env = append(cmd.Env, "MAIL_CONFIG="+l.ConfigDir)
		if res := oracle.Run(cmd, ""); res.Code != 0 {
			t.Fatalf("Postfix's postalias: exit %d: %s", res.Code, res.Stderr)
		}
	}
	postalias()
	if b, _ := os.ReadFile(db); len(b) < 16 || string(b[12:16]) != "\x61\x15\x06\x00" {
		t.Fatalf("%s is not a Berkeley DB hash file", db)
	}
	l.waitDeferred("alias database unavailable")
	l.must(l.Command("postqueue", "-f"), "")
	l.waitMbox(alice.Name, "for the team")
	l.waitFor("the queue to empty", func() bool {
		return strings.Contains(oracle.Run(l.binCmd("mailq"), "").Stdout, "Mail queue is empty")
	})

	// The alias changes; the running system sees it at the next lookup.
	if err := os.WriteFile(l.Aliases, []byte("team: "+bob.Name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	postalias()
	if res := l.mail("second\n", "-s", "team again", "team"); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(bob.Name, "second")
	if strings.Contains(l.mbox(alice.Name), "second") {
		t.Error("the old alias was used")
	}
	if strings.Contains(l.ReadMaillog(), "status=bounced") {
		t.Errorf("a message bounced:\n%s", l.ReadMaillog())
	}
}

// TestVirtualTableUnavailable: a missing virtual_alias_maps table keeps
// the message in maildrop (Postfix: "message not accepted, try again
// later"), never delivers it unaliased; postmap makes it go.
func TestVirtualTableUnavailable(t *testing.T) {
	// A folder mail_owner can search, as /etc/postfix.
	vdir, err := os.MkdirTemp("/var/tmp", "pdtvirtual-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(vdir) })
	os.Chmod(vdir, 0o755)
	virtual := filepath.Join(vdir, "virtual")
	l := labStart(t, "virtual_alias_maps = hash:"+virtual+"\n", "")
	alice := l.user("pdtalice")
	if res := l.mail("virtual\n", "-s", "to info", "info@example.ops"); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitLog(`postfix/cleanup\[\d+\]: warning: hash:` + regexp.QuoteMeta(virtual) + ` is unavailable\. open database ` + regexp.QuoteMeta(virtual) + `\.db: No such file or directory`)
	l.waitLog(`warning: .*virtual_alias_maps map lookup problem for info@example\.ops -- message not accepted, try again later`)
	if n := l.queueFiles("maildrop"); n != 1 {
		t.Errorf("maildrop holds %d files, want 1", n)
	}
	os.WriteFile(virtual, []byte("info@example.ops "+alice.Name+"\n"), 0o644)
	l.must(l.Command("postmap", virtual), "")
	// The next submission wakes pickup, which takes both.
	if res := l.mail("second\n", "-s", "again", "info@example.ops"); res.Code != 0 {
		t.Fatalf("mail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitMbox(alice.Name, "\nvirtual\n")
	l.waitMbox(alice.Name, "\nsecond\n")
}

// TestDomainTableUnavailable: a mydestination table that cannot be read
// defers the mail ("address resolver failure", as Postfix), never sends
// it on as if the domain were remote; once the table is built the next
// queue run delivers it.
func TestDomainTableUnavailable(t *testing.T) {
	ddir, err := os.MkdirTemp("/var/tmp", "pdtdomains-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ddir) })
	os.Chmod(ddir, 0o755)
	domains := filepath.Join(ddir, "domains")
	l := labStart(t, "mydestination = $myhostname, localhost, hash:"+domains+"\n", "")
	alice := l.user("pdtalice")
	if res := l.sendmail("Subject: dest\n\nto a table domain\n", alice.Name+"@example.ops"); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	l.waitLog(`postfix/qmgr\[\d+\]: [0-9A-F]+: to=<` + alice.Name + `@example\.ops>, relay=none, .*dsn=4\.3\.0, status=deferred \(address resolver failure\)`)
	for _, want := range []string{
		"warning: hash:" + domains + " is unavailable. open database " + domains + ".db: No such file or directory\n",
		"warning: mydestination: hash:" + domains + ": table lookup problem\n",
	} {
		if !strings.Contains(l.ReadMaillog(), want) {
			t.Errorf("maillog lacks %q", want)
		}
	}
	os.WriteFile(domains, []byte("example.ops OK\n"), 0o644)
	l.must(l.Command("postmap", domains), "")
	l.waitDeferred("address resolver failure")
	l.must(l.Command("postqueue", "-f"), "")
	l.waitMbox(alice.Name, "to a table domain")
}

// waitDeferred waits until mailq lists a message that is not being
// delivered (no '*' after its ID) with reason: a flush asked for before
// that would find nothing to do.
func (l *lab) waitDeferred(reason string) {
	l.t.Helper()
	rx := regexp.MustCompile(`(?m)^[0-9A-F]+ +\d+ .*\n +\(` + regexp.QuoteMeta(reason) + `\)\n`)
	l.waitFor("a deferred message ("+reason+") in mailq", func() bool {
		return rx.MatchString(oracle.Run(l.binCmd("mailq"), "").Stdout)
	})
}
