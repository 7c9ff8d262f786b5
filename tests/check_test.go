package tests

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// checkLayout is a configuration directory and a mail system layout in a
// temporary folder, with a main.cf pointing into it.
type checkLayout struct {
	root, conf string
}

// checkAccounts picks an existing unprivileged user and group to stand in
// for postfix and postdrop.
func checkAccounts(t *testing.T) (owner, group string) {
	t.Helper()
	for _, u := range []string{"postfix", "mail", "daemon"} {
		if x, err := user.Lookup(u); err == nil && x.Uid != "0" {
			owner = u
			break
		}
	}
	for _, g := range []string{"postdrop", "staff", "users"} {
		if x, err := user.LookupGroup(g); err == nil && x.Gid != "0" {
			group = g
			break
		}
	}
	if owner == "" || group == "" {
		t.Skip("no unprivileged user/group to act as mail_owner/setgid_group")
	}
	return owner, group
}

func checkNewLayout(t *testing.T, extra string) *checkLayout {
	t.Helper()
	owner, group := checkAccounts(t)
	root := t.TempDir()
	l := &checkLayout{root: root, conf: filepath.Join(root, "etc")}
	for _, d := range []string{"etc", "spool", "data", "sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	main := "queue_directory = " + root + "/spool\n" +
		"data_directory = " + root + "/data\n" +
		"command_directory = " + root + "/sbin\n" +
		"mail_owner = " + owner + "\nsetgid_group = " + group + "\n" + extra
	l.write(t, "etc/main.cf", main)
	master, err := os.ReadFile(filepath.Join(installRepo(), "etc/postfix/master.cf"))
	if err != nil {
		t.Fatal(err)
	}
	l.write(t, "etc/master.cf", string(master))
	return l
}

func (l *checkLayout) write(t *testing.T, rel, text string) string {
	t.Helper()
	p := filepath.Join(l.root, rel)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkRun runs our postfix with args and returns its result.
func checkRun(t *testing.T, args ...string) oracle.Result {
	t.Helper()
	return oracle.Run(exec.Command(oracle.Postdove(t, "postfix"), args...), "")
}

func (l *checkLayout) check(t *testing.T) oracle.Result {
	t.Helper()
	return checkRun(t, "-c", l.conf, "check")
}

func checkWant(t *testing.T, res oracle.Result, code int, wants ...string) {
	t.Helper()
	if res.Code != code {
		t.Errorf("exit %d, want %d; stderr:\n%s", res.Code, code, res.Stderr)
	}
	for _, w := range wants {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, res.Stderr)
		}
	}
}

func checkAge(t *testing.T, path string, age time.Duration) {
	t.Helper()
	when := time.Now().Add(-age)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCleanStockConfig(t *testing.T) {
	l := checkNewLayout(t, "")
	res := l.check(t)
	checkWant(t, res, 0)
	if strings.Contains(res.Stderr, "fatal") || strings.Contains(res.Stderr, "unused parameter") {
		t.Errorf("clean configuration got:\n%s", res.Stderr)
	}
}

// Lab mistake: "192.168.2.0/24 OK" in a hash: access map.
func TestCheckCIDRKeyInHashTable(t *testing.T) {
	l := checkNewLayout(t, "smtpd_client_restrictions = check_client_access hash:$config_directory/access\n")
	access := l.write(t, "etc/access", "# clients\n192.168.2.0/24 OK\r\n192.168.2.10 REJECT\n  continued\n")
	l.write(t, "etc/access.db", "")
	checkAge(t, access, time.Hour)
	res := l.check(t)
	checkWant(t, res, 0, access+", line 2: hash:"+access+" never matches network \"192.168.2.0/24\"",
		"cidr:"+access, `address prefix "192.168.2"`)
	if strings.Contains(res.Stderr, "192.168.2.10") || strings.Contains(res.Stderr, "older than") {
		t.Errorf("false alarm:\n%s", res.Stderr)
	}
	// The same key in a cidr: table is right.
	l = checkNewLayout(t, "smtpd_client_restrictions = check_client_access cidr:$config_directory/access\n")
	l.write(t, "etc/access", "192.168.2.0/24 OK\n")
	if res := l.check(t); strings.Contains(res.Stderr, "never matches") || res.Code != 0 {
		t.Errorf("cidr: table flagged: %d\n%s", res.Code, res.Stderr)
	}
}

// Lab mistake: a misspelt parameter name.
func TestCheckMisspeltParameter(t *testing.T) {
	l := checkNewLayout(t, "mydestinaton = $myhostname, localhost\n")
	res := l.check(t)
	checkWant(t, res, 0, "main.cf: unused parameter: mydestinaton=$myhostname, localhost",
		`main.cf, line 6: unknown parameter "mydestinaton": did you mean "mydestination"?`)
	l = checkNewLayout(t, "zzqqxx = 1\n")
	res = l.check(t)
	checkWant(t, res, 0, "unused parameter: zzqqxx=1")
	if strings.Contains(res.Stderr, "did you mean") {
		t.Errorf("suggested a name for nonsense:\n%s", res.Stderr)
	}
}

// Lab mistake: access edited after postmap.
func TestCheckTableNewerThanIndex(t *testing.T) {
	l := checkNewLayout(t, "smtpd_client_restrictions = check_client_access hash:"+"$config_directory/access\n")
	access := l.write(t, "etc/access", "192.168.2.10 REJECT\n")
	db := l.write(t, "etc/access.db", "")
	checkAge(t, db, time.Hour)
	checkWant(t, l.check(t), 0, "database "+db+" is older than source file "+access, `run "postmap `+access+`"`)
	checkAge(t, access, 2*time.Hour)
	if res := l.check(t); strings.Contains(res.Stderr, "older than") {
		t.Errorf("up-to-date index flagged:\n%s", res.Stderr)
	}
}

// Lab mistake: a table named in main.cf that does not exist, or was never
// postmap'd.
func TestCheckMissingTable(t *testing.T) {
	l := checkNewLayout(t, "virtual_alias_maps = hash:$config_directory/virtual\nalias_maps = hash:$config_directory/aliases\nalias_database = $alias_maps\nheader_checks = regexp:$config_directory/header_checks\n")
	virtual := filepath.Join(l.conf, "virtual")
	l.write(t, "etc/aliases", "root: marc\n")
	checkWant(t, l.check(t), 0,
		"virtual_alias_maps: table hash:"+virtual+" does not exist: open "+virtual+": No such file or directory",
		"open database "+filepath.Join(l.conf, "aliases.db")+": No such file or directory; run \"newaliases\"",
		"header_checks: table regexp:"+filepath.Join(l.conf, "header_checks")+" does not exist")
}

func TestCheckBadTableSources(t *testing.T) {
	l := checkNewLayout(t, "smtpd_client_restrictions = check_client_access hash:$config_directory/access\n")
	access := filepath.Join(l.conf, "access")
	// A directory where the source should be.
	if err := os.Mkdir(access, 0o755); err != nil {
		t.Fatal(err)
	}
	l.write(t, "etc/access.db", "")
	checkWant(t, l.check(t), 0, "is not a regular file")
	if err := os.Remove(access); err != nil {
		t.Fatal(err)
	}
	// Binary junk, a 1 MB line, NUL bytes: no crash, still finds the CIDR key.
	junk := string([]byte{0, 1, 2, 0xff, 0xfe, '\n'}) + strings.Repeat("x", 1<<20) + "\n10.0.0.0/8\tOK\n"
	l.write(t, "etc/access", junk)
	checkAge(t, access, time.Hour)
	checkWant(t, l.check(t), 0, access+", line 3: hash:"+access+` never matches network "10.0.0.0/8"`)
	// A dangling symbolic link.
	if err := os.Remove(access); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(l.root, "nowhere"), access); err != nil {
		t.Fatal(err)
	}
	checkWant(t, l.check(t), 0)
}

func TestCheckFatalErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent")
	checkWant(t, checkRun(t, "-c", missing, "check"), 1, "postfix: fatal: open "+missing+"/main.cf: No such file or directory")

	l := checkNewLayout(t, "")
	if err := os.Remove(filepath.Join(l.conf, "master.cf")); err != nil {
		t.Fatal(err)
	}
	checkWant(t, l.check(t), 1, "postfix/postfix-script: fatal: no "+l.conf+"/master.cf file found")

	l = checkNewLayout(t, "inet_interfaces\n")
	checkWant(t, l.check(t), 1, "fatal: "+l.conf+"/main.cf, line 6: missing '=' after attribute name")

	l = checkNewLayout(t, "mail_owner = no-such-user-here\n")
	checkWant(t, l.check(t), 1, "fatal: file "+l.conf+"/main.cf: parameter mail_owner: unknown user name value: no-such-user-here")

	l = checkNewLayout(t, "")
	l.write(t, "etc/master.cf", "smtp inet n - n\n")
	checkWant(t, l.check(t), 1, "fatal:", "master.cf")
}

func TestCheckCRLFMainCf(t *testing.T) {
	l := checkNewLayout(t, "")
	b, _ := os.ReadFile(filepath.Join(l.conf, "main.cf"))
	l.write(t, "etc/main.cf", strings.ReplaceAll(string(b), "\n", "\r\n")+"virtual_alias_maps = hash:/nonexistent/virtual\r\n")
	res := l.check(t)
	if res.Code != 0 && res.Code != 1 {
		t.Fatalf("exit %d", res.Code)
	}
	if strings.Contains(res.Stderr, "panic") || strings.Contains(res.Stderr, "goroutine") {
		t.Fatalf("crashed:\n%s", res.Stderr)
	}
}

func TestPostfixCommandErrors(t *testing.T) {
	l := checkNewLayout(t, "")
	unknown := "postfix/postfix-script: fatal: unknown command: '%s'. Usage: postfix start (or stop, reload, abort, flush, check, status, set-permissions, upgrade-configuration, logrotate)\n"
	res := checkRun(t, "-c", l.conf)
	if res.Code != 1 || res.Stderr != strings.Replace(unknown, "%s", "", 1) {
		t.Errorf("no command: %d %q", res.Code, res.Stderr)
	}
	res = checkRun(t, "-c", l.conf, "bogus")
	if res.Code != 1 || res.Stderr != strings.Replace(unknown, "%s", "bogus", 1) {
		t.Errorf("bogus command: %d %q", res.Code, res.Stderr)
	}
	res = checkRun(t, "-x", "check")
	if res.Code != 1 || res.Stderr != "postfix: invalid option -- 'x'\npostfix: fatal: usage: postfix [-c config_dir] [-Dv] command\n" {
		t.Errorf("bad option: %d %q", res.Code, res.Stderr)
	}
	res = checkRun(t, "-c")
	if res.Code != 1 || !strings.Contains(res.Stderr, "option requires an argument -- 'c'") {
		t.Errorf("-c without argument: %d %q", res.Code, res.Stderr)
	}
	// Only root may run it.
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	cmd := exec.Command(oracle.Postdove(t, "postfix"), "-c", l.conf, "check")
	var uid, gid int
	if _, err := fmt.Sscan(nobody.Uid, &uid); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(nobody.Gid, &gid); err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	res = oracle.Run(cmd, "")
	if res.Code == -1 {
		t.Skipf("cannot run as nobody: %s", res.Stderr)
	}
	if res.Code != 1 || !strings.Contains(res.Stderr, "postfix: fatal: the postfix command is reserved for the superuser") {
		t.Errorf("as nobody: %d %q", res.Code, res.Stderr)
	}
}

// postfix check creates a missing data_directory as Postfix's does (owned
// by mail_owner, mode 0700), and says nothing about the caches the mail
// system keeps there itself or the tables proxy_read_maps and
// proxy_write_maps merely list, while a missing table the configuration
// uses is still reported.
func TestCheckDataDirectoryAndCacheTables(t *testing.T) {
	l := checkNewLayout(t, "data_directory = $queue_directory/../lib/postfix\n"+
		"smtp_tls_session_cache_database = btree:$data_directory/smtp_scache\n"+
		"smtpd_tls_session_cache_database = btree:${data_directory}/smtpd_scache\n"+
		"address_verify_map = btree:$data_directory/verify_cache\n"+
		"postscreen_cache_map = btree:$data_directory/postscreen_cache\n"+
		"smtp_sasl_auth_cache_name = lmdb:$data_directory/sasl_cache\n"+
		"proxy_read_maps = hash:$config_directory/listed_only\n"+
		"virtual_alias_maps = hash:$config_directory/virtual\n")
	res := l.check(t)
	checkWant(t, res, 0, "virtual_alias_maps: table hash:"+filepath.Join(l.conf, "virtual")+" does not exist")
	for _, quiet := range []string{"scache", "verify_cache", "postscreen_cache", "sasl_cache", "listed_only"} {
		if strings.Contains(res.Stderr, quiet) {
			t.Errorf("warning about %s:\n%s", quiet, res.Stderr)
		}
	}
	owner, _ := checkAccounts(t)
	u, err := user.Lookup(owner)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	data := filepath.Join(l.root, "lib/postfix")
	if err := syscall.Stat(data, &st); err != nil {
		t.Fatalf("data_directory not created: %v", err)
	}
	if fmt.Sprint(st.Uid) != u.Uid || st.Gid != 0 || st.Mode&0o7777 != 0o700 {
		t.Errorf("data_directory: uid %d gid %d mode %o; want %s, 0, 0700 (Postfix's)", st.Uid, st.Gid, st.Mode&0o7777, u.Uid)
	}
}
