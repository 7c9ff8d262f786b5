package compat

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"postdove/compat/oracle"
)

// postconfDifferences reads testdata/postconf/DIFFERENCES: parameter name
// -> the default postdove shows on purpose.
func postconfDifferences(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("testdata/postconf/DIFFERENCES")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "default "); ok {
			name, value, _ := strings.Cut(rest, " = ")
			m[name] = value
		}
	}
	return m
}

// postconfCorpus copies one testdata/postconf case into a fresh directory
// with Debian's stock master.cf (plus a submission service) next to it.
func postconfCorpus(t *testing.T, o *oracle.Oracle, name string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata/postconf", name, "main.cf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(filepath.Join("testdata/postconf", name, "master.cf"))
	if err == nil {
		// the case brings its own master.cf
	} else if m, err = os.ReadFile(filepath.Join(o.Root, "usr/share/postfix/master.cf.dist")); err != nil {
		t.Fatal(err)
	} else {
		m = append(m, "submission inet n - y - - smtpd\n  -o syslog_name=postfix/submission\n  -o smtpd_client_restrictions=$mua_client_restrictions\nmailman unix - n n - - pipe\n  flags=FR user=list argv=/usr/lib/mailman/bin/postfix-to-mailman.py ${nexthop} ${user}\n"...)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	// Postfix reads a file again, after a second's pause, while its mtime
	// is within a second of now (it may be being written): warnings would
	// then depend on timing. Files that are "cool" are read once.
	past := time.Now().Add(-time.Hour)
	for _, f := range []string{"main.cf", "master.cf"} {
		if err := os.Chtimes(filepath.Join(dir, f), past, past); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// postconfResult is one run reduced to what must match.
type postconfResult struct {
	Stdout string
	Stderr []string // StderrShape, de-duplicated and sorted
	Code   int
}

func postconfRun(cmd *exec.Cmd, skip map[string]string) postconfResult {
	r := oracle.Run(cmd, "")
	// $process_id (e.g. inside debugger_command under -x) is the pid of
	// the postconf process itself: the same value in both runs' terms.
	if cmd.Process != nil {
		pid := regexp.MustCompile(`\b` + strconv.Itoa(cmd.Process.Pid) + `\b`)
		r.Stdout = pid.ReplaceAllString(r.Stdout, "PID")
	}
	var keep []string
	for _, l := range strings.SplitAfter(r.Stdout, "\n") {
		name, _, _ := strings.Cut(l, " =")
		if _, ok := skip[name]; !ok {
			keep = append(keep, l)
		}
	}
	seen := map[string]bool{}
	var errs []string
	for _, l := range oracle.StderrShape(r.Stderr) {
		if !seen[l] {
			seen[l] = true
			errs = append(errs, l)
		}
	}
	sort.Strings(errs)
	return postconfResult{Stdout: strings.Join(keep, ""), Stderr: errs, Code: r.Code}
}

func postconfCompare(t *testing.T, o *oracle.Oracle, ours string, skip map[string]string, args ...string) {
	t.Helper()
	postconfCompareNorm(t, o, ours, skip, nil, args...)
}

// postconfCompareNorm is postconfCompare with each stderr line passed
// through norm first, for messages where Postfix's choice is random.
func postconfCompareNorm(t *testing.T, o *oracle.Oracle, ours string, skip map[string]string, norm func(string) string, args ...string) {
	t.Helper()
	want := postconfRun(o.Command("postconf", args...), skip)
	got := postconfRun(exec.Command(ours, args...), skip)
	for _, r := range []*postconfResult{&want, &got} {
		for i := range r.Stderr {
			if norm != nil {
				r.Stderr[i] = norm(r.Stderr[i])
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("postconf %s: (-oracle +ours)\n%s", strings.Join(args, " "), postconfResultDiff(want, got))
	}
}

// postconfResultDiff shows where two results differ, line by line.
func postconfResultDiff(want, got postconfResult) string {
	var b strings.Builder
	if want.Code != got.Code {
		fmt.Fprintf(&b, "exit code: oracle %d, ours %d\n", want.Code, got.Code)
	}
	if want.Stdout != got.Stdout {
		b.WriteString("stdout:\n" + postconfDiff(want.Stdout, got.Stdout))
	}
	w, g := strings.Join(want.Stderr, "\n"), strings.Join(got.Stderr, "\n")
	if w != g {
		b.WriteString("stderr (shape, sorted):\n" + postconfDiff(w, g))
	}
	return b.String()
}

// postconfLines splits text into lines; "" has none.
func postconfLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// postconfDiff is a line diff of a and b (longest common subsequence),
// "-" for lines only in a, "+" for lines only in b, with one line of
// context; lines are %q-quoted so that CR, tabs and trailing blanks show.
func postconfDiff(a, b string) string {
	x, y := postconfLines(a), postconfLines(b)
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		tag  byte
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			ops = append(ops, op{' ', x[i]})
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, op{'+', y[j]})
			j++
		default:
			ops = append(ops, op{'-', x[i]})
			i++
		}
	}
	var out strings.Builder
	for k, o := range ops {
		near := o.tag != ' ' || k > 0 && ops[k-1].tag != ' ' || k+1 < len(ops) && ops[k+1].tag != ' '
		if near {
			fmt.Fprintf(&out, "  %c %q\n", o.tag, o.text)
		}
	}
	return out.String()
}

// postconfLabNames are the parameters the labs, the HOWTOs and the daemons
// use.
var postconfLabNames = strings.Fields(`myhostname mydomain myorigin mydestination inet_interfaces
inet_protocols mynetworks mynetworks_style relayhost relay_domains alias_maps alias_database
home_mailbox mail_spool_directory mailbox_command default_privs mail_owner queue_directory
command_directory daemon_directory data_directory mail_name smtpd_banner message_size_limit
minimal_backoff_time maximal_backoff_time maximal_queue_lifetime bounce_queue_lifetime
delay_warning_time queue_run_delay smtpd_client_restrictions smtpd_helo_restrictions
smtpd_sender_restrictions smtpd_relay_restrictions smtpd_recipient_restrictions
virtual_alias_domains virtual_alias_maps virtual_mailbox_domains virtual_mailbox_maps
smtpd_tls_security_level smtpd_tls_cert_file smtpd_tls_key_file smtp_tls_security_level
append_at_myorigin append_dot_mydomain canonical_maps sender_canonical_maps
recipient_canonical_maps forward_path luser_relay mailbox_size_limit local_recipient_maps
default_database_type setgid_group enable_long_queue_ids hopcount_limit maillog_file
syslog_name syslog_facility proxy_interfaces parent_domain_matches_subdomains biff
compatibility_level default_transport local_transport relay_transport smtputf8_enable
smtpd_relay_before_recipient_restrictions respectful_logging`)

var postconfCases = []string{"centos7", "vm2", "vm3", "lab-later", "adversarial", "master-edit"}

func TestPostconfQueries(t *testing.T) {
	o := oracle.Get(t)
	ours := oracle.Postdove(t, "postconf")
	skip := postconfDifferences(t)
	for _, name := range postconfCases {
		t.Run(name, func(t *testing.T) {
			dir := postconfCorpus(t, o, name)
			postconfCompare(t, o, ours, skip, "-c", dir, "-n")
			postconfCompare(t, o, ours, skip, "-c", dir, "-nx")
			postconfCompare(t, o, ours, skip, "-c", dir, "-n", "-f")
			postconfCompare(t, o, ours, skip, append([]string{"-c", dir, "-x"}, postconfLabNames...)...)
			postconfCompare(t, o, ours, skip, append([]string{"-c", dir}, postconfLabNames...)...)
			postconfCompare(t, o, ours, skip, "-c", dir, "-h", "myorigin", "relayhost", "lab_custom", "no_such_parameter")
			postconfCompare(t, o, ours, skip, "-c", dir, "-M")
			postconfCompare(t, o, ours, skip, "-c", dir, "-Mf", "submission/inet", "smtp")
			postconfCompare(t, o, ours, skip, "-c", dir, "-F")
			postconfCompare(t, o, ours, skip, "-c", dir, "-F", "smtp/inet/command", "*/*/chroot")
			postconfCompare(t, o, ours, skip, "-c", dir, "-P")
			postconfCompare(t, o, ours, skip, "-c", dir, "-P", "submission/inet/syslog_name")
			postconfCompare(t, o, ours, skip, "-c", dir, "-P", "odd/unix/foo", "*/*/syslog_name", "smtp/inet/syslog_name", "nosuch/unix/x")
			postconfCompare(t, o, ours, skip, "-c", dir, "-F", "pickup/unix/chroot", "smtp/inet/chroot", "smtp/inet/type", "smtp")
			postconfCompare(t, o, ours, skip, "-c", dir, "-hP")
			postconfCompare(t, o, ours, skip, "-c", dir, "-HF", "smtp")
			postconfCompare(t, o, ours, skip, "-c", dir, "-M", "pickup", "smtp", "nosuch/unix")
		})
	}
}

func TestPostconfDefaults(t *testing.T) {
	o := oracle.Get(t)
	ours := oracle.Postdove(t, "postconf")
	skip := postconfDifferences(t)
	skip["process_id"] = ""
	dir := postconfCorpus(t, o, "vm2")
	postconfCompare(t, o, ours, skip, "-c", dir, "-d")
	postconfCompare(t, o, ours, skip, append([]string{"-c", dir, "-d"}, postconfLabNames...)...)
	// -h drops the names, so leave out the ones DIFFERENCES lists.
	var labNames []string
	for _, n := range postconfLabNames {
		if _, ok := skip[n]; !ok {
			labNames = append(labNames, n)
		}
	}
	postconfCompare(t, o, ours, skip, append([]string{"-c", dir, "-dh"}, labNames...)...)
	for name, want := range skip {
		if name == "process_id" {
			continue
		}
		got := oracle.Run(exec.Command(ours, "-c", dir, "-d", name), "")
		if strings.TrimSpace(got.Stdout) != name+" = "+want {
			t.Errorf("DIFFERENCES says -d %s shows %q; ours shows %q", name, want, got.Stdout)
		}
		orc := oracle.Run(o.Command("postconf", "-c", dir, "-d", name), "")
		if orc.Stdout == got.Stdout {
			t.Errorf("DIFFERENCES lists %s but we match the oracle; remove it", name)
		}
	}
}

func TestPostconfErrors(t *testing.T) {
	o := oracle.Get(t)
	ours := oracle.Postdove(t, "postconf")
	skip := postconfDifferences(t)
	for _, name := range []string{"missing-eq", "truncated"} {
		dir := postconfCorpus(t, o, name)
		postconfCompare(t, o, ours, skip, "-c", dir, "-n")
	}
	// NUL bytes: Postfix reads its files as C strings, so a logical line
	// ends at its first NUL (a line that starts with one has no name).
	for _, name := range []string{"nul", "nul-name", "nul-master"} {
		dir := postconfCorpus(t, o, name)
		for _, args := range [][]string{{"-n"}, {"-M"}, {"-P"}, {"myhostname", "mydomain", "relayhost"}} {
			postconfCompare(t, o, ours, skip, append([]string{"-c", dir}, args...)...)
		}
	}
	// In a loop ($myorigin -> $relayhost -> $myorigin), the name Postfix
	// reports is the one its randomly seeded hash table yields first:
	// either member of the loop is right.
	loop := strings.NewReplacer(`nesting: "myorigin"`, `nesting: LOOP-MEMBER`, `nesting: "relayhost"`, `nesting: LOOP-MEMBER`)
	dir := postconfCorpus(t, o, "loop")
	for _, args := range [][]string{{"-n"}, {"-M"}, {"-P"}, {"myorigin"}} {
		postconfCompareNorm(t, o, ours, skip, loop.Replace, append([]string{"-c", dir}, args...)...)
	}
	dir = postconfCorpus(t, o, "vm2")
	postconfCompare(t, o, ours, skip, "-c", filepath.Join(dir, "nonexistent"), "-n")
	postconfCompare(t, o, ours, skip, "-c", dir, "-n", "-d")
	postconfCompare(t, o, ours, skip, "-c", dir, "-e")
	postconfCompare(t, o, ours, skip, "-c", dir, "-e", "novalue")
	// A directory where main.cf should be.
	d := t.TempDir()
	os.Mkdir(filepath.Join(d, "main.cf"), 0o755)
	past := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(d, "main.cf"), past, past)
	postconfCompare(t, o, ours, skip, "-c", d, "-n")
	postconfCompare(t, o, ours, skip, "-c", d, "-e", "myhostname=x")
	postconfCompare(t, o, ours, skip, "-c", filepath.Join(dir, "nonexistent"), "-X", "myhostname")
	// ... and where master.cf should be, for an edit.
	d = postconfCorpus(t, o, "vm2")
	os.Remove(filepath.Join(d, "master.cf"))
	os.Mkdir(filepath.Join(d, "master.cf"), 0o755)
	postconfCompare(t, o, ours, skip, "-c", d, "-MX", "smtp/inet")
	// Usage errors. The program name differs, so compare from the colon on.
	for _, args := range [][]string{{"-Z"}, {"-c"}} {
		want := oracle.Run(o.Command("postconf", args...), "")
		got := oracle.Run(exec.Command(ours, args...), "")
		if got.Code != want.Code || postconfStripProg(got.Stderr) != postconfStripProg(want.Stderr) {
			t.Errorf("postconf %v:\n got %d %q\nwant %d %q", args, got.Code, got.Stderr, want.Code, want.Stderr)
		}
	}
}

// postconfStripProg removes every occurrence of the program's path.
func postconfStripProg(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		prog, _, _ := strings.Cut(l, ":")
		out = append(out, strings.ReplaceAll(l, prog, "PROG"))
	}
	return strings.Join(out, "\n")
}

func TestPostconfEdits(t *testing.T) {
	o := oracle.Get(t)
	ours := oracle.Postdove(t, "postconf")
	edits := [][]string{
		{"-e", "myhostname=vm5.example.ops", "relayhost = [vm3.example.ops]", "new_one = 1", "mydestination ="},
		{"-#", "myorigin", "relayhost", "not_there"},
		{"-X", "mydestination", "alias_maps", "debugger_command"},
		{"-e", "debugger_command=x", "mydestination=$myhostname"},
	}
	for _, name := range []string{"centos7", "vm2", "adversarial"} {
		for _, e := range edits {
			postconfEditCompare(t, o, ours, name, "main.cf", e...)
		}
	}
}

// postconfEditCompare runs one editing command on two copies of a corpus
// case, and compares exit code, output, warnings and the edited file.
func postconfEditCompare(t *testing.T, o *oracle.Oracle, ours, corpus, file string, args ...string) {
	t.Helper()
	a, b := postconfCorpus(t, o, corpus), postconfCorpus(t, o, corpus)
	want := postconfRun(o.Command("postconf", append([]string{"-c", a}, args...)...), nil)
	got := postconfRun(exec.Command(ours, append([]string{"-c", b}, args...)...), nil)
	for i := range want.Stderr {
		want.Stderr[i] = strings.ReplaceAll(want.Stderr[i], a, "DIR")
	}
	for i := range got.Stderr {
		got.Stderr[i] = strings.ReplaceAll(got.Stderr[i], b, "DIR")
	}
	wantFile, _ := os.ReadFile(filepath.Join(a, file))
	gotFile, _ := os.ReadFile(filepath.Join(b, file))
	wf, gf := string(wantFile), string(gotFile)
	if file == "main.cf" && len(args) > 0 && args[0] == "-e" {
		wf, gf = postconfSortAppended(wf, args[1:]), postconfSortAppended(gf, args[1:])
	}
	if !reflect.DeepEqual(got, want) || wf != gf {
		t.Errorf("%s: postconf %q: (-oracle +ours)\n%s%s:\n%s", corpus, args, postconfResultDiff(want, got), file, postconfDiff(wf, gf))
	}
}

// postconfSortAppended sorts the lines at the end of an edited main.cf
// that set one of the names in edits. Postfix appends new parameters in
// the order of its hash table, which is seeded at random: the set of lines
// is what must match, not their order.
func postconfSortAppended(file string, edits []string) string {
	names := map[string]bool{}
	for _, e := range edits {
		n, _, _ := strings.Cut(e, "=")
		names[strings.TrimSpace(n)] = true
	}
	lines := strings.SplitAfter(file, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	i := len(lines)
	for i > 0 {
		n, _, ok := strings.Cut(lines[i-1], " =")
		if !ok || !names[n] {
			break
		}
		i--
	}
	sort.Strings(lines[i:])
	return strings.Join(lines, "")
}

func TestPostconfMasterEdits(t *testing.T) {
	o := oracle.Get(t)
	ours := oracle.Postdove(t, "postconf")
	edits := [][]string{
		// -M: replace in place, add at the end, a name/type the entry
		// itself does not carry, repeated requests, bad entries.
		{"-M", "smtp/inet = smtp inet n - n - - smtpd -o smtpd_tls_security_level=encrypt -v"},
		{"-M", "new/unix = new unix - - n - 1 pipe flags=R user=nobody argv=/bin/cat -o x=1 ${recipient} ${sender} ${nexthop} ${extension}"},
		{"-M", "foo/unix = bar unix - - n - - smtp", "relay/unix = relay unix n - y - - smtp", "relay/unix = relay unix - - y - - lmtp"},
		{"-Me", "smtp/inet = smtp inet n - - smtpd"},
		{"-M", "smtp/inet ="},
		{"-M", "smtp = smtp inet n - n - - smtpd"},
		{"-Me"},
		// -F: every field, wildcards, bad names and values.
		{"-F", "smtp/inet/chroot = n", "relay/unix/process_limit=10", "pickup/unix/wakeup = 30"},
		{"-F", "*/unix/chroot = y"},
		{"-F", "mailman/unix/command = pipe flags=FRX user=list argv=/bin/true", "last/unix/service = final", "local/unix/type = fifo"},
		{"-F", "smtp/inet/bogus = 1"},
		{"-F", "smtp/inet/chroot = a b"},
		{"-F", "smtp/inet = 1"},
		{"-F", "nosuch/inet/chroot = n", "smtp/inet/private = y"},
		{"-Fe"},
		// -P: replace, add after the daemon options, remove.
		{"-P", "smtp/inet/syslog_name = postfix/in", "smtp/inet/smtpd_sasl_auth_enable=yes", "mailman/unix/debug_peer_level=3"},
		{"-P", "relay/unix/smtp_fallback_relay = [backup]", "odd/unix/foo = 1", "smtp/inet/syslog_name=a", "smtp/inet/syslog_name=b"},
		{"-P", "smtp/inet/syslog_name = a b"},
		{"-P", "nosuch/unix/x = 1"},
		{"-PX", "smtp/inet/syslog_name", "relay/unix/smtp_fallback_relay", "local/unix/nothing", "nosuch/unix/x"},
		{"-PX", "smtp/inet"},
		{"-PX"},
		// -MX, -M#: remove or comment out whole entries, keeping comments.
		{"-MX", "smtp/inet", "nosuch/unix"},
		{"-MX", "*/unix"},
		{"-M#", "smtp/inet", "relay/unix", "last/unix"},
		{"-M#", "smtp"},
		{"-MX"},
		{"-MX", "smtp/inet = x"},
		{"-F#", "smtp/inet/chroot"},
		{"-FX", "smtp/inet/chroot"},
		{"-P#", "smtp/inet/syslog_name"},
	}
	for _, e := range edits {
		postconfEditCompare(t, o, ours, "master-edit", "master.cf", e...)
	}
	// Debian's stock master.cf, with its commented-out entries. (Only
	// edits that succeed: Postfix pauses a second before a fatal exit.)
	for _, e := range [][]string{edits[0], edits[2], edits[7], edits[9], edits[15], edits[19], edits[22], edits[24]} {
		postconfEditCompare(t, o, ours, "centos7", "master.cf", e...)
	}
	// What the edited file reads back as.
	for _, e := range edits[:3] {
		a, b := postconfCorpus(t, o, "master-edit"), postconfCorpus(t, o, "master-edit")
		oracle.Run(o.Command("postconf", append([]string{"-c", a}, e...)...), "")
		oracle.Run(exec.Command(ours, append([]string{"-c", b}, e...)...), "")
		for _, q := range [][]string{{"-M"}, {"-Mf"}, {"-F"}, {"-P"}} {
			want := postconfRun(o.Command("postconf", append([]string{"-c", a}, q...)...), nil)
			got := postconfRun(exec.Command(ours, append([]string{"-c", b}, q...)...), nil)
			want.Stderr, got.Stderr = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after postconf %q: postconf %s: (-oracle +ours)\n%s", e, q, postconfResultDiff(want, got))
			}
		}
	}
}
