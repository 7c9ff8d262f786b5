package imap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postdove/compat/oracle"
)

const nobody = 65534

// dovecotIMAP runs Debian's real imap binary (the oracle) in PREAUTH mode
// on a home owned by nobody, with the commands of script on its standard
// input, and returns what it wrote.
type dovecotIMAP struct {
	t    testing.TB
	o    *oracle.Oracle
	home string
	conf string
}

func newDovecotIMAP(t testing.TB, home string) *dovecotIMAP {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the Dovecot oracle runs as nobody: needs root")
	}
	o := oracle.Get(t)
	if _, err := os.Stat(filepath.Join(o.Root, "usr/lib/dovecot/imap")); err != nil {
		t.Skipf("no imap in the oracle: %v", err)
	}
	os.Chmod(home, 0755)
	os.MkdirAll(filepath.Join(home, "run"), 0755)
	conf := filepath.Join(home, "dovecot.conf")
	cfg := fmt.Sprintf(`base_dir = %[1]s/run
default_login_user = nobody
default_internal_user = nobody
mail_location = maildir:~/Maildir
first_valid_uid = 1
ssl = no
namespace inbox {
  inbox = yes
  mailbox Trash {
    special_use = \Trash
  }
}
`, home)
	if err := os.WriteFile(conf, []byte(cfg), 0644); err != nil {
		t.Fatal(err)
	}
	return &dovecotIMAP{t: t, o: o, home: home, conf: conf}
}

// run gives the Maildir to nobody (our server ran as root here, as the
// user in production) and runs script through Dovecot's imap.
func (d *dovecotIMAP) run(script string) string {
	d.t.Helper()
	filepath.Walk(d.home, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, nobody, nobody) })
	cmd := exec.Command(filepath.Join(d.o.Root, "usr/bin/doveconf"), "-c", d.conf, "-f", "service=imap", "-e",
		filepath.Join(d.o.Root, "usr/lib/dovecot/imap"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	cmd.Env = append(os.Environ(), "HOME="+d.home, "USER=nobody", "LD_LIBRARY_PATH="+filepath.Join(d.o.Root, "usr/lib/dovecot"))
	script = strings.TrimSuffix(script, "\n") + "\nz LOGOUT\n"
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(script, "\n", "\r\n"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		d.t.Fatalf("dovecot imap: %v\n%s", err, out)
	}
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

var (
	fetchLine   = regexp.MustCompile(`(?m)^\* \d+ FETCH \((?:UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+))\)$`)
	uidValidity = regexp.MustCompile(`\[UIDVALIDITY (\d+)\]`)
)

// view is "UIDVALIDITY v" then "uid flags" lines, \Recent left out
// (Dovecot gives it to the first session that sees a message).
func dovecotView(out string) string {
	var b strings.Builder
	if m := uidValidity.FindStringSubmatch(out); m != nil {
		b.WriteString("UIDVALIDITY " + m[1] + "\n")
	}
	for _, m := range fetchLine.FindAllStringSubmatch(out, -1) {
		uid, flags := m[1]+m[4], m[2]+m[3]
		fmt.Fprintf(&b, "%s %s\n", uid, normFlags(strings.Fields(flags)))
	}
	return b.String()
}

func normFlags(fl []string) string {
	var out []string
	for _, f := range fl {
		if f != `\Recent` {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func ourView(t testing.TB, c *imapclient.Client) string {
	t.Helper()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "UIDVALIDITY %d\n", sel.UIDValidity)
	for _, m := range msgs {
		var fl []string
		for _, f := range m.Flags {
			fl = append(fl, string(f))
		}
		fmt.Fprintf(&b, "%d %s\n", m.UID, normFlags(fl))
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestSameMaildirAsDovecot: Dovecot's imap and ours take turns on one
// Maildir and each sees the other's UIDs, UIDVALIDITY, flags and keywords.
func TestSameMaildirAsDovecot(t *testing.T) {
	r := newRig(t)
	d := newDovecotIMAP(t, r.home)
	// Dovecot writes first.
	first := d.run("a APPEND INBOX {" + fmt.Sprint(len(crlfString(testMessage(1)))) + "+}\n" + testMessage(1) + "\n" +
		"b APPEND INBOX (\\Seen $Work) {" + fmt.Sprint(len(crlfString(testMessage(2)))) + "+}\n" + testMessage(2) + "\n" +
		"c CREATE Trash")
	theirs := dovecotView(d.run("a SELECT INBOX\nb UID FETCH 1:* (FLAGS)"))
	if !strings.Contains(theirs, "2 $Work \\Seen") {
		t.Fatalf("Dovecot's view: %s\n%s", theirs, first)
	}
	c := r.client(nil)
	if ours := ourView(t, c); ours != theirs {
		t.Fatalf("after Dovecot wrote:\nours:\n%s\nDovecot's:\n%s", ours, theirs)
	}
	// We write: flags, a keyword, a message, an expunge.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagAnswered, "$Label1"}, Silent: true}, nil).Close()
	msg := crlfString(testMessage(3))
	ac := c.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged}})
	ac.Write([]byte(msg))
	ac.Close()
	if _, err := ac.Wait(); err != nil {
		t.Fatal(err)
	}
	c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close()
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(3), "Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	ours := ourView(t, c)
	theirs = dovecotView(d.run("a SELECT INBOX\nb UID FETCH 1:* (FLAGS)"))
	if ours != theirs || !strings.Contains(ours, "1 $Label1 \\Answered") {
		t.Fatalf("after we wrote:\nours:\n%s\nDovecot's:\n%s", ours, theirs)
	}
	trash := d.run("a SELECT Trash\nb UID FETCH 1:* (FLAGS)")
	if !strings.Contains(dovecotView(trash), "1 \\Flagged\n") {
		t.Errorf("Dovecot's Trash: %s", trash)
	}
	// Dovecot writes again; a new session of ours sees it.
	d.run("a SELECT INBOX\nb UID STORE 1 -FLAGS ($Label1)\nc UID STORE 1 +FLAGS (\\Deleted)\nd EXPUNGE\ne APPEND INBOX {" +
		fmt.Sprint(len(msg)) + "+}\n" + testMessage(3) + "\n")
	theirs = dovecotView(d.run("a SELECT INBOX\nb UID FETCH 1:* (FLAGS)"))
	if ours := ourView(t, c); ours != theirs || !strings.Contains(ours, "\n4 \n") {
		t.Fatalf("after Dovecot wrote again:\nours:\n%s\nDovecot's:\n%s", ours, theirs)
	}
}

// TestNamesLikeDovecot sends the same CREATE and SELECT commands to
// Dovecot and to us and compares the replies' texts.
func TestNamesLikeDovecot(t *testing.T) {
	r := newRig(t)
	d := newDovecotIMAP(t, tempHome(t))
	names := []string{"../x", "a/b", "~x", "a..b", ".x", "x.", "a%b", "a*b", "a.~b", "INBOX", "inbox.q", `"."`, `""`, "a.b/../c", "..", "x..", "../bob", "~bob/Maildir", "INBOX/../../bob"}
	var script strings.Builder
	for i, n := range names {
		q := n
		if !strings.HasPrefix(n, `"`) {
			q = `"` + n + `"`
		}
		fmt.Fprintf(&script, "c%d CREATE %s\ns%d SELECT %s\n", i, q, i, q)
	}
	theirs := d.run(script.String())
	conn := r.raw(t)
	ours := conn.send(script.String())
	strip := regexp.MustCompile(` \([0-9.+ ]+ secs\)\.?`)
	for i, n := range names {
		for _, c := range []string{"c", "s"} {
			tag := fmt.Sprintf("%s%d ", c, i)
			want, got := lineWith(strip.ReplaceAllString(theirs, ""), tag), lineWith(ours, tag)
			if strings.HasPrefix(want, tag+"OK") {
				if !strings.HasPrefix(got, tag+"OK") {
					t.Errorf("%s: %q, Dovecot %q", tag+n, got, want)
				}
				continue
			}
			if got != want {
				t.Errorf("%s: %q, Dovecot %q", tag+n, got, want)
			}
		}
	}
}

func lineWith(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimRight(l, "\r")
		}
	}
	return ""
}

func crlfString(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
