package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// doveconfEdit changes one line of the stock configuration, as a user
// following the lab would.
type doveconfEdit struct{ file, old, new string }

// doveconfStock copies the stock CentOS-7-style /etc/dovecot (etc/dovecot)
// into a fresh folder, applies edits and returns the dovecot.conf path.
func doveconfStock(t *testing.T, edits ...doveconfEdit) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dovecot")
	if out, err := exec.Command("cp", "-r", "../etc/dovecot", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	for _, e := range edits {
		p := filepath.Join(dst, e.file)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), e.old) {
			t.Fatalf("%s has no %q", e.file, e.old)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), e.old, e.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dst, "dovecot.conf")
}

// revision is the part of doveconf's first line that names the build.
var revision = regexp.MustCompile(`^# ([0-9.]+) \([^)]*\):`)

// doveconfBoth runs the oracle's doveconf and postdove's with the same
// arguments (and the same accounts) and fails the test where what a user
// sees differs: stdout (but the build revision), stderr lines, exit code.
func doveconfBoth(t *testing.T, args ...string) oracle.Result {
	t.Helper()
	return doveconfCompare(t, true, args...)
}

// doveconfCompare is doveconfBoth; withUsers false runs both with the
// machine's own accounts.
func doveconfCompare(t *testing.T, withUsers bool, args ...string) oracle.Result {
	t.Helper()
	wrap := func(cmd *exec.Cmd) *exec.Cmd {
		if withUsers {
			return oracle.WithDovecotUsers(t, cmd)
		}
		return cmd
	}
	return doveconfRun(t, wrap, args...)
}

// doveconfRun is doveconfBoth with each command wrapped by wrap.
func doveconfRun(t *testing.T, wrap func(*exec.Cmd) *exec.Cmd, args ...string) oracle.Result {
	t.Helper()
	o := oracle.Get(t)
	if _, err := os.Stat(filepath.Join(o.Root, "usr/bin/doveconf")); err != nil {
		t.Skip("the oracle has no doveconf")
	}
	want := oracle.Run(wrap(o.Doveconf(args...)), "")
	want.Stdout = doveconfDifferences(t, want.Stdout)
	got := oracle.Run(wrap(exec.Command(oracle.Postdove(t, "doveconf"), args...)), "")
	norm := func(s string) string { return revision.ReplaceAllString(s, "# $1 (REV):") }
	if norm(got.Stdout) != norm(want.Stdout) {
		t.Errorf("doveconf %s: stdout differs\n--- postdove\n%s\n--- Dovecot\n%s", strings.Join(args, " "), got.Stdout, want.Stdout)
	}
	if g, w := strings.Join(oracle.StderrShape(got.Stderr), "\n"), strings.Join(oracle.StderrShape(want.Stderr), "\n"); g != w {
		t.Errorf("doveconf %s: stderr differs\n--- postdove\n%s\n--- Dovecot\n%s", strings.Join(args, " "), g, w)
	}
	if got.Code != want.Code {
		t.Errorf("doveconf %s: exit %d, Dovecot %d", strings.Join(args, " "), got.Code, want.Code)
	}
	return got
}

// doveconfDifferences rewrites the oracle's output where postdove differs
// on purpose (testdata/doveconf/DIFFERENCES): a top-level "NAME = <debian>"
// line becomes "NAME = <default>".
func doveconfDifferences(t *testing.T, stdout string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/doveconf/DIFFERENCES")
	if err != nil {
		t.Fatal(err)
	}
	ours, debian := map[string]string{}, map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		for prefix, m := range map[string]map[string]string{"default ": ours, "debian ": debian} {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				name, value, _ := strings.Cut(rest, " =")
				m[name] = strings.TrimPrefix(value, " ")
			}
		}
	}
	lines := strings.Split(stdout, "\n")
	for i, l := range lines {
		for name, v := range debian {
			if l == name+" = "+v || (v == "" && l == name+" = ") {
				lines[i] = name + " = " + ours[name]
			}
		}
	}
	return strings.Join(lines, "\n")
}

// The lab's edits to the stock configuration (lab 4b and its
// troubleshooting note), one at a time and all together.
var labEdits = map[string][]doveconfEdit{
	"stock":          nil,
	"protocols-imap": {{"dovecot.conf", "#protocols = imap pop3 lmtp", "protocols = imap"}},
	"protocols-pop3": {{"dovecot.conf", "#protocols = imap pop3 lmtp", "protocols = imap pop3"}},
	"plaintext":      {{"conf.d/10-auth.conf", "#disable_plaintext_auth = yes", "disable_plaintext_auth = no"}},
	"ssl-yes":        {{"conf.d/10-ssl.conf", "ssl = required", "ssl = yes"}},
	"ssl-no":         {{"conf.d/10-ssl.conf", "ssl = required", "ssl = no"}},
	"maildir":        {{"conf.d/10-mail.conf", "#mail_location =\n", "mail_location = maildir:~/Maildir\n"}},
	"mbox":           {{"conf.d/10-mail.conf", "#mail_location =\n", "mail_location = mbox:~/mail:INBOX=/var/mail/%u\n"}},
	"imap-port-0":    {{"conf.d/10-master.conf", "    #port = 143", "    port = 0"}},
	"postmaster":     {{"dovecot.conf", "# Everything else.", "postmaster_address = postmaster@example.ops\n# Everything else."}},
	"privileged":     {{"conf.d/10-mail.conf", "#mail_privileged_group =", "mail_privileged_group = mail"}},
	"sasl-for-postfix": {{"conf.d/10-master.conf", "  #unix_listener /var/spool/postfix/private/auth {\n  #  mode = 0666\n  #}",
		"  unix_listener /var/spool/postfix/private/auth {\n    mode = 0666\n    user = postfix\n    group = postfix\n  }"}},
	"passwd-file": {{"conf.d/10-auth.conf", "!include auth-system.conf.ext\n#!include auth-sql.conf.ext\n#!include auth-ldap.conf.ext\n#!include auth-passwdfile.conf.ext",
		"#!include auth-system.conf.ext\n!include auth-sql.conf.ext\n!include auth-ldap.conf.ext\n!include auth-passwdfile.conf.ext"}},
	"deny-master-checkpassword": {{"conf.d/10-auth.conf", "#!include auth-deny.conf.ext\n#!include auth-master.conf.ext", "!include auth-deny.conf.ext\n!include auth-master.conf.ext"},
		{"conf.d/10-auth.conf", "#!include auth-checkpassword.conf.ext\n#!include auth-static.conf.ext", "!include auth-checkpassword.conf.ext\n!include auth-static.conf.ext"}},
	"lda": {{"conf.d/15-lda.conf", "#lda_mailbox_autocreate = no\n#lda_mailbox_autosubscribe = no",
		"lda_mailbox_autocreate = yes\nlda_mailbox_autosubscribe = yes"}},
	"all": {
		{"dovecot.conf", "#protocols = imap pop3 lmtp", "protocols = imap"},
		{"dovecot.conf", "# Everything else.", "postmaster_address = postmaster@example.ops\n# Everything else."},
		{"conf.d/10-auth.conf", "#disable_plaintext_auth = yes", "disable_plaintext_auth = no"},
		{"conf.d/10-ssl.conf", "ssl = required", "ssl = yes"},
		{"conf.d/10-mail.conf", "#mail_location =\n", "mail_location = maildir:~/Maildir\n"},
		{"conf.d/10-master.conf", "    #port = 995", "    port = 0"},
		{"conf.d/20-imap.conf", "  #mail_max_userip_connections = 10", "  mail_max_userip_connections = 20"},
	},
	// Mistakes in the included files: the error names conf.d's file and line.
	"typo-in-conf.d":      {{"conf.d/10-mail.conf", "#mail_location =\n", "mail_locaton = maildir:~/Maildir\n"}},
	"unclosed-in-conf.d":  {{"conf.d/15-mailboxes.conf", "  mailbox Junk {\n    special_use = \\Junk\n  }", "  mailbox Junk {\n    special_use = \\Junk\n"}},
	"bad-value-in-conf.d": {{"conf.d/10-ssl.conf", "ssl = required", "ssl = mandatory"}},
	"bad-include":         {{"conf.d/10-auth.conf", "!include auth-system.conf.ext", "!include auth-sytem.conf.ext"}},
}

func TestDoveconfStockAndLabEdits(t *testing.T) {
	for name, edits := range labEdits {
		t.Run(name, func(t *testing.T) {
			conf := doveconfStock(t, edits...)
			doveconfBoth(t, "-c", conf, "-n")
		})
	}
}

func TestDoveconfBrokenFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/doveconf/broken/*.conf")
	if len(files) == 0 {
		t.Fatal("no broken files")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".conf"), func(t *testing.T) {
			abs, _ := filepath.Abs(f)
			res := doveconfBoth(t, "-c", abs, "-n")
			if res.Code == 0 && !strings.Contains(f, "-try") && !strings.Contains(f, "comment") {
				t.Errorf("a broken file passed")
			}
		})
	}
}

// Valid files that exercise the grammar and doveconf's layout, with -n,
// -a and -P.
func TestDoveconfCases(t *testing.T) {
	files, _ := filepath.Glob("testdata/doveconf/cases/*.conf")
	if len(files) == 0 {
		t.Fatal("no cases")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".conf"), func(t *testing.T) {
			abs, _ := filepath.Abs(f)
			for _, args := range [][]string{{"-n"}, {"-a"}, {"-P", "-n"}, {"-a", "-f", "protocol=imap", "-f", "remote=10.1.2.3"}} {
				doveconfBoth(t, append([]string{"-c", abs}, args...)...)
			}
		})
	}
}

func TestDoveconfQueries(t *testing.T) {
	conf := doveconfStock(t, labEdits["all"]...)
	for _, args := range [][]string{
		{"protocols", "listen", "mail_location", "ssl", "ssl_cert", "ssl_key"},
		{"-h", "mail_location"},
		{"-h", "ssl", "disable_plaintext_auth", "first_valid_uid"},
		{"-n", "ssl", "protocols", "listen"},
		{"service/imap-login/inet_listener/imap/port", "service/imap/process_limit"},
		{"-h", "service/pop3-login/inet_listener/pop3s/port"},
		{"namespace"},
		{"passdb", "userdb"},
		{"-f", "protocol=imap", "mail_max_userip_connections"},
		{"-f", "protocol=pop3", "mail_max_userip_connections"},
		{"nosuch_setting"},
		{"-f", "bogus"},
		{"-z"},
	} {
		doveconfBoth(t, append([]string{"-c", conf}, args...)...)
	}
	// Sections that filters add, settings doveconf does not list with -a.
	sections, _ := filepath.Abs("testdata/doveconf/cases/filter-sections.conf")
	for _, args := range [][]string{
		{"-f", "protocol=imap", "namespace", "passdb", "plugin"},
		{"-f", "protocol=imap", "-f", "local=127.0.0.1", "service/imap/process_limit", "plugin/x"},
		{"mail_cache_min_mail_count", "mail_cache_max_size", "-h", "mail_index_log2_max_age"},
	} {
		doveconfBoth(t, append([]string{"-c", sections}, args...)...)
	}
}

func TestDoveconfAll(t *testing.T) {
	doveconfBoth(t, "-c", doveconfStock(t), "-a")
	doveconfBoth(t, "-c", doveconfStock(t, labEdits["all"]...), "-a")
	doveconfBoth(t, "-c", doveconfStock(t, labEdits["all"]...), "-P", "-a")
	doveconfBoth(t, "-c", doveconfStock(t, labEdits["all"]...), "-d")
}

// With the machine's own accounts (dovecot and dovenull may be missing):
// the dump checks them, queries by name do not.
func TestDoveconfMachineUsers(t *testing.T) {
	conf := doveconfStock(t, labEdits["maildir"]...)
	doveconfCompare(t, false, "-c", conf, "-n")
	doveconfCompare(t, false, "-c", conf, "-h", "mail_location")
	doveconfCompare(t, false, "-c", conf, "protocols", "ssl")
}

// Files the user may not read: the main file, an included one.
func TestDoveconfUnreadable(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv(1) is needed to run as nobody")
	}
	conf := doveconfStock(t)
	// The test's temporary folders are the owner's only: open them up.
	for d := filepath.Dir(conf); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := exec.Command("chmod", "-R", "go+rX", d).Run(); err != nil {
			t.Fatal(err)
		}
	}
	asNobody := func(cmd *exec.Cmd) *exec.Cmd {
		w := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", cmd.Path}, cmd.Args[1:]...)...)
		w.Env = cmd.Env
		return w
	}
	if err := os.Chmod(filepath.Join(filepath.Dir(conf), "conf.d/10-mail.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := doveconfRun(t, asNobody, "-c", conf, "-h", "ssl"); !strings.Contains(res.Stderr, "Couldn't open include file") {
		t.Errorf("stderr %q", res.Stderr)
	}
	if err := os.Chmod(conf, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := doveconfRun(t, asNobody, "-c", conf, "-n"); !strings.Contains(res.Stderr, "open("+conf+") failed: Permission denied") {
		t.Errorf("stderr %q", res.Stderr)
	}
}

func TestDoveconfMissingFile(t *testing.T) {
	doveconfBoth(t, "-c", filepath.Join(t.TempDir(), "nosuch.conf"), "-n")
}
