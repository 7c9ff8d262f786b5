package compat

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

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
	m, err := os.ReadFile(filepath.Join(o.Root, "usr/share/postfix/master.cf.dist"))
	if err != nil {
		t.Fatal(err)
	}
	m = append(m, "submission inet n - y - - smtpd\n  -o syslog_name=postfix/submission\n  -o smtpd_client_restrictions=$mua_client_restrictions\nmailman unix - n n - - pipe\n  flags=FR user=list argv=/usr/lib/mailman/bin/postfix-to-mailman.py ${nexthop} ${user}\n"...)
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), m, 0o644); err != nil {
		t.Fatal(err)
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
	want := postconfRun(o.Command("postconf", args...), skip)
	got := postconfRun(exec.Command(ours, args...), skip)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("postconf %s:\n got: %+q\nwant: %+q", strings.Join(args, " "), got, want)
	}
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

var postconfCases = []string{"centos7", "vm2", "vm3", "lab-later", "adversarial"}

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
	postconfCompare(t, o, ours, skip, append([]string{"-c", dir, "-dh"}, postconfLabNames...)...)
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
	for _, name := range []string{"missing-eq", "loop", "truncated"} {
		dir := postconfCorpus(t, o, name)
		postconfCompare(t, o, ours, skip, "-c", dir, "-n")
	}
	dir := postconfCorpus(t, o, "vm2")
	postconfCompare(t, o, ours, skip, "-c", filepath.Join(dir, "nonexistent"), "-n")
	postconfCompare(t, o, ours, skip, "-c", dir, "-n", "-d")
	postconfCompare(t, o, ours, skip, "-c", dir, "-e")
	postconfCompare(t, o, ours, skip, "-c", dir, "-e", "novalue")
	// A directory where main.cf should be.
	d := t.TempDir()
	os.Mkdir(filepath.Join(d, "main.cf"), 0o755)
	postconfCompare(t, o, ours, skip, "-c", d, "-n")
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
			a, b := postconfCorpus(t, o, name), postconfCorpus(t, o, name)
			want := oracle.Run(o.Command("postconf", append([]string{"-c", a}, e...)...), "")
			got := oracle.Run(exec.Command(ours, append([]string{"-c", b}, e...)...), "")
			wantFile, _ := os.ReadFile(filepath.Join(a, "main.cf"))
			gotFile, _ := os.ReadFile(filepath.Join(b, "main.cf"))
			if got.Code != want.Code || string(gotFile) != string(wantFile) || got.Stdout != want.Stdout {
				t.Errorf("%s: postconf %q:\n got %d %q\n%s\nwant %d %q\n%s", name, e, got.Code, got.Stderr, gotFile, want.Code, want.Stderr, wantFile)
			}
		}
	}
}
