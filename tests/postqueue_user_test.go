package tests

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
	"postdove/pkg/queue"
)

// postqueueUser runs postdove's postqueue the way an ordinary user does
// on a Postfix machine: a copy of bin/postqueue installed set-gid
// postdrop, run as nobody:nogroup. A set-gid program accepts -c DIR only
// when the default /etc/postfix/main.cf lists DIR in
// alternate_config_directories. This machine has no /etc/postfix, and
// other tests must not see one, so each run happens in a private mount
// namespace whose /etc is an overlay: /etc/postfix/main.cf exists there
// only, and nothing on the real /etc changes.
type postqueueUser struct {
	t       *testing.T
	bin     string // the set-gid copy
	overlay string // upper and work dirs of the /etc overlay
	conf    string // the instance's config dir
}

func newPostqueueUser(t *testing.T, inst *oracle.Instance) *postqueueUser {
	t.Helper()
	for _, tool := range []string{"unshare", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		t.Skip("no postdrop group")
	}
	dir, err := os.MkdirTemp("/var/tmp", "pdtpostqueue-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	src, err := os.ReadFile(oracle.Postdove(t, "postqueue"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "postqueue")
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chgrp", "postdrop", bin).CombinedOutput(); err != nil {
		t.Fatalf("chgrp: %v %s", err, out)
	}
	if err := os.Chmod(bin, os.ModeSetgid|0o755); err != nil {
		t.Fatal(err)
	}
	u := &postqueueUser{t: t, bin: bin, overlay: filepath.Join(dir, "etc-overlay"), conf: inst.ConfigDir}
	for _, d := range []string{"upper/postfix", "work"} {
		if err := os.MkdirAll(filepath.Join(u.overlay, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(u.overlay, "upper/postfix/main.cf"),
		[]byte("alternate_config_directories = "+inst.ConfigDir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return u
}

// run runs the set-gid postqueue -c CONF args as nobody:nogroup; trusted
// says whether the default main.cf lists CONF.
func (u *postqueueUser) run(trusted bool, args ...string) oracle.Result {
	u.t.Helper()
	mount := "true"
	if trusted {
		mount = fmt.Sprintf("mount -t overlay overlay -o lowerdir=/etc,upperdir=%s/upper,workdir=%s/work /etc",
			u.overlay, u.overlay)
	}
	script := mount + ` && exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"`
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh",
		u.bin, "-c", u.conf}, args...)...)
	res := oracle.Run(cmd, "")
	if strings.Contains(res.Stderr, "mount:") || strings.Contains(res.Stderr, "unshare:") {
		u.t.Skipf("no private mount namespace here: %s", res.Stderr)
	}
	return res
}

func postqueueWant(t *testing.T, what string, res oracle.Result, code int, stderr string) {
	t.Helper()
	if res.Code != code || res.Stderr != stderr {
		t.Errorf("%s: exit %d, stderr %q; want exit %d, stderr %q", what, res.Code, res.Stderr, code, stderr)
	}
}

func TestPostqueueUser(t *testing.T) {
	// Nothing listens at the relayhost: remote mail stays deferred.
	relay := fmt.Sprintf("relayhost = [127.0.0.2]:%d\n", oracle.FreePort(t, "127.0.0.2"))
	inst := oracle.StartPostdove(t, oracle.PostfixOptions{MainCF: "fast_flush_domains = remote.example\n" + relay})
	u := newPostqueueUser(t, inst)
	for _, name := range []string{"showq", "flush"} {
		fi, err := os.Stat(filepath.Join(inst.QueueDir, "public", name))
		if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o666 {
			t.Fatalf("public/%s: %v, %v", name, fi, err)
		}
	}

	// Mail for a destination that cannot be reached stays deferred.
	if res := oracle.Run(inst.Sendmail("-f", "sender@example.test", "user@remote.example"), "Subject: stuck\n\nbody\n"); res.Code != 0 {
		t.Fatalf("sendmail: exit %d: %s", res.Code, res.Stderr)
	}
	q := queue.New(inst.QueueDir)
	var id string
	deadline := time.Now().Add(labDeadline)
	for id == "" && time.Now().Before(deadline) {
		if ids, _ := q.List(queue.Deferred); len(ids) == 1 {
			id = ids[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if id == "" {
		t.Fatalf("no deferred message; maillog:\n%s", inst.ReadMaillog())
	}
	deferrals := func() int {
		return len(regexp.MustCompile(id+`: .*status=deferred`).FindAllString(inst.ReadMaillog(), -1))
	}
	waitDeferrals := func(what string, n int) {
		t.Helper()
		deadline := time.Now().Add(labDeadline)
		for deferrals() < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if deferrals() < n {
			t.Errorf("%s: message %s not retried; maillog:\n%s", what, id, inst.ReadMaillog())
		}
		// qmgr logs the deferral, then moves the message back to
		// deferred/, where the next flush request finds it.
		for !q.Exists(queue.Deferred, id) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitDeferrals("first delivery", 1)

	// The listing, as nobody, through public/showq: the same as root's.
	res := u.run(true, "-p")
	postqueueWant(t, "nobody -p", res, 0, "")
	root := oracle.Run(inst.Command("postqueue", "-p"), "")
	if !strings.Contains(res.Stdout, id+" ") || !strings.Contains(res.Stdout, "user@remote.example") ||
		!strings.Contains(res.Stdout, "Connection refused)") || res.Stdout != root.Stdout || root.Stderr != "" {
		t.Errorf("nobody -p:\n%s\nroot -p (%q):\n%s", res.Stdout, root.Stderr, root.Stdout)
	}
	res = u.run(true, "-j")
	postqueueWant(t, "nobody -j", res, 0, "")
	if !strings.HasPrefix(res.Stdout, `{"queue_name": "deferred", "queue_id": "`+id+`"`) {
		t.Errorf("nobody -j: %s", res.Stdout)
	}

	// Flushing: each request makes qmgr try the message again.
	n := deferrals()
	for _, args := range [][]string{{"-f"}, {"-i", id}, {"-s", "remote.example"}} {
		res := u.run(true, args...)
		postqueueWant(t, fmt.Sprint("nobody ", args), res, 0, "")
		n++
		waitDeferrals(fmt.Sprint(args), n)
		n = deferrals()
	}
	postqueueWant(t, "nobody -s unlisted", u.run(true, "-s", "other.example"), 69,
		"postqueue: fatal: Flush service is not configured for destination \"other.example\"\n")

	// Without the alternate_config_directories entry -c is refused.
	if res := u.run(false, "-p"); res.Code != 69 || res.Stdout != "" ||
		!strings.Contains(res.Stderr, "unauthorized configuration directory name: "+inst.ConfigDir) {
		t.Errorf("untrusted -c: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	// authorized_mailq_users and authorized_flush_users.
	cf := filepath.Join(inst.ConfigDir, "main.cf")
	orig, _ := os.ReadFile(cf)
	os.WriteFile(cf, append(append([]byte{}, orig...), "authorized_mailq_users = root, !nobody, static:anyone\nauthorized_flush_users = root\n"...), 0o644)
	postqueueWant(t, "nobody -p refused", u.run(true, "-p"), 69, "postqueue: fatal: User nobody(65534) is not allowed to view the mail queue\n")
	postqueueWant(t, "nobody -f refused", u.run(true, "-f"), 69, "postqueue: fatal: User nobody(65534) is not allowed to flush the mail queue\n")
	postqueueWant(t, "root -p with nobody refused", oracle.Run(inst.Command("postqueue", "-p"), ""), 0, "")
	os.WriteFile(cf, orig, 0o644)

	// The mail system stopped: nobody has no way in; root reads the queue.
	inst.Stop()
	down := "(Connect to the Postfix showq service: Connection refused)"
	postqueueWant(t, "nobody -p, stopped", u.run(true, "-p"), 69, "postqueue: fatal: Queue report unavailable - mail system is down "+down+"\n")
	postqueueWant(t, "nobody -i, stopped", u.run(true, "-i", id), 69,
		"postqueue: warning: connect to public/flush: Connection refused\npostqueue: fatal: Cannot flush mail queue - mail system is down\n")
	res = oracle.Run(inst.Command("postqueue", "-p"), "")
	postqueueWant(t, "root -p, stopped", res, 0, "postqueue: warning: Mail system is down -- accessing queue directly "+down+"\n")
	if res.Stdout != root.Stdout {
		t.Errorf("root -p, stopped:\n%s\nwant:\n%s", res.Stdout, root.Stdout)
	}
}
