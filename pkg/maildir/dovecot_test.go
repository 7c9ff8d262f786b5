package maildir

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// dovecot runs Debian's real dovecot-lda and doveadm (the oracle, never
// installed) on a private Maildir. Both run as nobody (65534), the owner of
// the folder: as root, dovecot-lda insists on -d and an auth server, and
// doveadm refuses UID 0. The configuration is passed by running the
// programs under the oracle's `doveconf -c FILE -e`, since the programs
// would look for doveconf at its installed path.
type dovecot struct {
	t     testing.TB
	o     *oracle.Oracle
	home  string // owned by nobody; the Maildir is home/Maildir
	conf  string
	Store *Store
}

const nobody = 65534

func newDovecot(t testing.TB) *dovecot {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the Dovecot oracle runs as nobody: needs root")
	}
	o := oracle.Get(t)
	if _, err := os.Stat(filepath.Join(o.Root, "usr/lib/dovecot/dovecot-lda")); err != nil {
		t.Skipf("no dovecot-lda in the oracle: %v", err)
	}
	home, err := os.MkdirTemp("", "maildir-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	os.Chmod(home, 0755)
	os.Mkdir(filepath.Join(home, "run"), 0755)
	conf := filepath.Join(home, "dovecot.conf")
	cfg := fmt.Sprintf(`base_dir = %[1]s/run
default_login_user = nobody
default_internal_user = nobody
mail_location = maildir:%[1]s/Maildir
mail_uid = %[2]d
mail_gid = %[2]d
first_valid_uid = 1
log_path = %[1]s/dovecot.log
ssl = no
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=%[2]d gid=%[2]d home=%[1]s
}
`, home, nobody)
	if err := os.WriteFile(conf, []byte(cfg), 0644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{home, filepath.Join(home, "run")} {
		os.Chown(p, nobody, nobody)
	}
	return &dovecot{t: t, o: o, home: home, conf: conf,
		Store: OpenStore(filepath.Join(home, "Maildir"), Options{UID: nobody, GID: nobody, Hostname: "vm"})}
}

// command runs an oracle program under doveconf, as nobody.
func (d *dovecot) command(service, prog string, args ...string) *exec.Cmd {
	a := []string{"-c", d.conf, "-f", "service=" + service, "-e", prog}
	cmd := exec.Command(filepath.Join(d.o.Root, "usr/bin/doveconf"), append(a, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	cmd.Env = append(os.Environ(), "HOME="+d.home, "USER=nobody", "LD_LIBRARY_PATH="+filepath.Join(d.o.Root, "usr/lib/dovecot"))
	return cmd
}

// LDA delivers msg with the real dovecot-lda (extra args such as -m BOX).
func (d *dovecot) LDA(msg string, args ...string) {
	d.t.Helper()
	if err := d.lda(msg, args...); err != nil {
		d.t.Fatal(err)
	}
}

func (d *dovecot) ldaCmd(args ...string) *exec.Cmd {
	return d.command("lda", filepath.Join(d.o.Root, "usr/lib/dovecot/dovecot-lda"), append([]string{"-f", "sender@example.org", "-a", "nobody@example.org"}, args...)...)
}

func (d *dovecot) lda(msg string, args ...string) error {
	cmd := d.ldaCmd(args...)
	cmd.Stdin = strings.NewReader(msg)
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(d.home, "dovecot.log"))
		return fmt.Errorf("dovecot-lda: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Doveadm runs the real doveadm with its flow formatter and returns stdout.
func (d *dovecot) Doveadm(args ...string) string {
	d.t.Helper()
	cmd := d.command("doveadm", filepath.Join(d.o.Root, "usr/bin/doveadm"), append([]string{"-f", "flow"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		d.t.Fatalf("doveadm %v: %v\n%s%s", args, err, out, stderr.String())
	}
	return string(out)
}

// Fetch returns doveadm's "uid=N flags=..." lines for a mailbox, without
// \Recent: Dovecot gives that to the first session that sees a message,
// so it says which doveadm ran first, not what is on disk.
func (d *dovecot) Fetch(box string) string {
	d.t.Helper()
	out := d.Doveadm("fetch", "uid flags", "mailbox", box, "all")
	out = strings.ReplaceAll(out, ` \Recent`, "")
	return strings.ReplaceAll(out, `=\Recent`, "=")
}

// ours renders our view of a mailbox the way Fetch shows Dovecot's.
func ours(t testing.TB, mb *Mailbox) string {
	t.Helper()
	st, err := mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	names := map[byte]string{'D': `\Draft`, 'F': `\Flagged`, 'R': `\Answered`, 'S': `\Seen`, 'T': `\Deleted`}
	for i := range st.Messages {
		m := &st.Messages[i]
		var fl []string
		for _, c := range []byte("RFTSD") { // Dovecot's order: \Answered \Flagged \Deleted \Seen \Draft
			if strings.IndexByte(m.Flags(), c) >= 0 {
				fl = append(fl, names[c])
			}
		}
		fl = append(fl, m.Keywords(&st.Keywords)...)
		fmt.Fprintf(&b, "uid=%d flags=%s\n", m.UID, strings.Join(fl, " "))
	}
	return b.String()
}

func msgN(i int) string {
	return fmt.Sprintf("From: a@example.org\nSubject: message %d\n\nbody %d\n", i, i)
}

// TestDovecotThenOurs: a Maildir that Dovecot made keeps its UIDVALIDITY
// and UIDs under the store, and what the store changes (flags, keywords,
// expunge, new mail) is what Dovecot then reads.
func TestDovecotThenOurs(t *testing.T) {
	d := newDovecot(t)
	for i := 1; i <= 3; i++ {
		d.LDA(msgN(i))
	}
	before := d.Doveadm("mailbox", "status", "uidvalidity uidnext messages", "INBOX")
	mb, err := d.Store.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	st, err := mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("INBOX messages=3 uidnext=4 uidvalidity=%d\n", st.UIDValidity)
	if before != want || st.UIDNext != 4 || len(st.Messages) != 3 {
		t.Fatalf("Dovecot says %q; we read uidnext %d, %d messages, uidvalidity %d", before, st.UIDNext, len(st.Messages), st.UIDValidity)
	}
	if got, want := ours(t, mb), d.Fetch("INBOX"); got != want {
		t.Fatalf("we read\n%s\nDovecot reads\n%s", got, want)
	}
	if err := mb.SetFlags(FlagChange{UID: 2, Flags: "SF", Keywords: []string{"$Junk", "work"}}); err != nil {
		t.Fatal(err)
	}
	if err := mb.Expunge(1); err != nil {
		t.Fatal(err)
	}
	uid, _, err := mb.Deliver(strings.NewReader(msgN(4)), DeliverOptions{Flags: "R", Keywords: []string{"work"}})
	if err != nil || uid != 4 {
		t.Fatalf("deliver: uid %d, %v", uid, err)
	}
	if _, _, err := mb.Deliver(strings.NewReader(msgN(5)), DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	want = "uid=2 flags=\\Flagged \\Seen $Junk work\nuid=3 flags=\nuid=4 flags=\\Answered work\nuid=5 flags=\n"
	if got := d.Fetch("INBOX"); got != want {
		t.Fatalf("Dovecot reads\n%s\nwant\n%s", got, want)
	}
	if got := ours(t, mb); got != want {
		t.Fatalf("we read\n%s\nwant\n%s", got, want)
	}
	want = fmt.Sprintf("INBOX messages=4 uidnext=6 uidvalidity=%d\n", st.UIDValidity)
	if got := d.Doveadm("mailbox", "status", "uidvalidity uidnext messages", "INBOX"); got != want {
		t.Fatalf("Dovecot's status %q, want %q", got, want)
	}
	// Dovecot's body is ours.
	if got := d.Doveadm("fetch", "body", "mailbox", "INBOX", "uid", "4"); got != "body=body 4\n\n" && got != "body=body 4\n" {
		t.Fatalf("Dovecot reads body %q", got)
	}

	// And back: Dovecot changes, we read.
	d.Doveadm("flags", "add", `\Deleted`, "mailbox", "INBOX", "uid", "3")
	d.Doveadm("expunge", "mailbox", "INBOX", "uid", "2")
	d.LDA(msgN(6))
	want = "uid=3 flags=\\Deleted\nuid=4 flags=\\Answered work\nuid=5 flags=\nuid=6 flags=\n"
	if got := ours(t, mb); got != want {
		t.Fatalf("we read\n%s\nwant\n%s\nDovecot reads\n%s", got, want, d.Fetch("INBOX"))
	}
	st2, err := mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	if st2.UIDValidity != st.UIDValidity || st2.UIDNext != 7 {
		t.Fatalf("uidvalidity %d uidnext %d after Dovecot's changes", st2.UIDValidity, st2.UIDNext)
	}
}

// TestOursThenDovecot: a Maildir the store made is Dovecot's too: its
// UIDVALIDITY, UIDs, flags, keywords, folders and subscriptions.
func TestOursThenDovecot(t *testing.T) {
	d := newDovecot(t)
	os.Chown(d.home, nobody, nobody)
	mb, err := d.Store.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if _, _, err := mb.Deliver(strings.NewReader(msgN(i)), DeliverOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := mb.Deliver(strings.NewReader(msgN(3)), DeliverOptions{Flags: "S", Keywords: []string{"$Label1"}}); err != nil {
		t.Fatal(err)
	}
	st, err := mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("INBOX messages=3 uidnext=4 uidvalidity=%d\n", st.UIDValidity)
	if got := d.Doveadm("mailbox", "status", "uidvalidity uidnext messages", "INBOX"); got != want {
		t.Fatalf("Dovecot's status %q, want %q", got, want)
	}
	if got, want := d.Fetch("INBOX"), "uid=1 flags=\nuid=2 flags=\nuid=3 flags=\\Seen $Label1\n"; got != want {
		t.Fatalf("Dovecot reads\n%s\nwant\n%s", got, want)
	}
	// Folders in modified UTF-7, subscriptions in 2.3's format.
	for _, name := range []string{"Ärger", "Ärger.Steuer", "a&b"} {
		if err := d.Store.Create(name); err != nil {
			t.Fatal(err)
		}
		if err := d.Store.Subscribe(name, true); err != nil {
			t.Fatal(err)
		}
	}
	sub, _ := d.Store.Mailbox("Ärger.Steuer")
	if _, _, err := sub.Deliver(strings.NewReader(msgN(9)), DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := d.Doveadm("mailbox", "list", "-s"), "Ärger\nÄrger.Steuer\na&b\n"; got != want {
		t.Fatalf("Dovecot's subscriptions\n%s\nwant\n%s", got, want)
	}
	if got, want := d.Fetch("Ärger.Steuer"), "uid=1 flags=\n"; got != want {
		t.Fatalf("Dovecot reads Ärger.Steuer\n%s", got)
	}
	// Dovecot's folders and subscriptions read back.
	d.Doveadm("mailbox", "create", "-s", "Entwürfe.2026")
	d.Doveadm("mailbox", "unsubscribe", "a&b")
	list, err := d.Store.List()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(list, ","), "INBOX,Entwürfe.2026,a&b,Ärger,Ärger.Steuer"; got != want {
		t.Fatalf("List %s, want %s", got, want)
	}
	subs, err := d.Store.Subscriptions()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(subs, ","), "Ärger,Ärger.Steuer,Entwürfe.2026"; got != want {
		t.Fatalf("Subscriptions %s, want %s", got, want)
	}
	// Every folder has its own UIDVALIDITY, whoever made it.
	d.Doveadm("mailbox", "create", "Dovecots")
	if err := d.Store.Create("Ours"); err != nil {
		t.Fatal(err)
	}
	uv := map[string]bool{}
	for _, box := range []string{"INBOX", "Ärger.Steuer", "Entwürfe.2026", "Dovecots", "Ours"} {
		v := d.Doveadm("mailbox", "status", "uidvalidity", box)
		if uv[v[strings.LastIndex(v, "=")+1:]] {
			t.Fatalf("%s: the UIDVALIDITY of another folder: %s", box, v)
		}
		uv[v[strings.LastIndex(v, "=")+1:]] = true
	}
	d.LDA(msgN(10), "-m", "Entwürfe.2026")
	box, err := d.Store.Mailbox("Entwürfe.2026")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ours(t, box), d.Fetch("Entwürfe.2026"); got != want || want != "uid=1 flags=\n" {
		t.Fatalf("we read\n%s\nDovecot reads\n%s", got, want)
	}
}

// TestDovecotHonoursOurLock: while the store holds dovecot-uidlist.lock,
// Dovecot's dovecot-lda leaves the uidlist alone (it saves the file and
// leaves the UID to the next sync, as it does whenever the lock is busy);
// we then give that file the next UID and Dovecot agrees. A lock left by a
// dead process of this host is taken over by Dovecot as by us.
func TestDovecotHonoursOurLock(t *testing.T) {
	d := newDovecot(t)
	mb, err := d.Store.Mailbox("INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := mb.Deliver(strings.NewReader(msgN(1)), DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(mb.Dir, UidlistName))
	l, err := lockUidlist(mb.Dir, d.Store.opts)
	if err != nil {
		t.Fatal(err)
	}
	d.LDA(msgN(2))
	if after, _ := os.ReadFile(filepath.Join(mb.Dir, UidlistName)); string(after) != string(before) {
		t.Fatalf("dovecot-lda changed the uidlist under our lock:\n%s", after)
	}
	if n, _ := readNames(filepath.Join(mb.Dir, "new")); len(n) != 2 {
		t.Fatalf("new/ holds %v", n)
	}
	l.unlock()
	want := "uid=1 flags=\nuid=2 flags=\n"
	if got := ours(t, mb); got != want {
		t.Fatalf("we read\n%s", got)
	}
	if got := d.Fetch("INBOX"); got != want {
		t.Fatalf("Dovecot reads\n%s", got)
	}
	// A dead process's lock, three seconds old.
	lock := filepath.Join(mb.Dir, UidlistName+".lock")
	os.WriteFile(lock, []byte(fmt.Sprintf("%d:%s", deadProcess(t), hostname)), 0600)
	os.Chown(lock, nobody, nobody)
	old := time.Now().Add(-3 * time.Second)
	os.Chtimes(lock, old, old)
	d.LDA(msgN(3))
	want += "uid=3 flags=\n"
	if got := d.Fetch("INBOX"); got != want {
		t.Fatalf("Dovecot reads\n%s", got)
	}
	if got := ours(t, mb); got != want {
		t.Fatalf("we read\n%s", got)
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Fatal("the dead process's lock is still there")
	}
}

// TestBrokenUidlistRepairedAsDovecot: a dovecot-uidlist damaged in the
// middle is repaired as Dovecot repairs it: the records before the damage
// keep their UIDs, UIDVALIDITY stays, the other files get new UIDs. Two
// copies of one Maildir, one repaired by Dovecot, one by us, end up with
// the same UIDs for the same files.
func TestBrokenUidlistRepairedAsDovecot(t *testing.T) {
	d := newDovecot(t)
	for i := 1; i <= 4; i++ {
		d.LDA(msgN(i))
	}
	path := filepath.Join(d.Store.Root, UidlistName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	lines[2] = "xx garbage\n"
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"dovecot.index", "dovecot.index.log", "dovecot.index.cache"} {
		os.Remove(filepath.Join(d.Store.Root, f))
	}
	theirs := d.Store.Root + ".dovecot"
	if out, err := exec.Command("cp", "-a", d.Store.Root, theirs).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	// Dovecot repairs its copy.
	cmd := d.command("doveadm", filepath.Join(d.o.Root, "usr/bin/doveadm"), "-o", "mail_location=maildir:"+theirs, "fetch", "uid", "mailbox", "INBOX", "all")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Broken file "+filepath.Join(theirs, UidlistName)+" line 3") {
		t.Fatalf("doveadm on the broken copy: %v\n%s", err, out)
	}
	// We repair ours.
	mb, _ := d.Store.Mailbox("INBOX")
	st, err := mb.Sync()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "broken file "+path+": corrupted dovecot-uidlist: line 3") {
		t.Fatalf("warnings %q", st.Warnings)
	}
	uidsOf := func(dir string) map[string]uint32 {
		u, broken, err := readUidlist(dir)
		if err != nil || broken != nil {
			t.Fatalf("%s after the repair: %v %v", dir, err, broken)
		}
		m := map[string]uint32{"V": u.UIDValidity}
		for _, r := range u.Records {
			m[r.Name] = r.UID
		}
		return m
	}
	if ours, theirs := uidsOf(d.Store.Root), uidsOf(theirs); fmt.Sprint(ours) != fmt.Sprint(theirs) || len(ours) != 5 {
		t.Fatalf("we repaired to %v\nDovecot to %v", ours, theirs)
	}
	if got := d.Fetch("INBOX"); got != "uid=1 flags=\nuid=2 flags=\nuid=3 flags=\nuid=4 flags=\n" {
		t.Fatalf("Dovecot reads our repair as\n%s", got)
	}
}
