package postconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// editMaster writes master.cf, runs one edit and returns the new file and
// the warnings.
func editMaster(t *testing.T, masterCF string, part MasterPart, mode EditMode, args ...string) (string, []string, error) {
	t.Helper()
	dir := writeConf(t, "", masterCF)
	var warns []string
	err := EditMaster(dir, part, mode, args, func(s string) { warns = append(warns, s) })
	b, rerr := os.ReadFile(filepath.Join(dir, "master.cf"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("temp files left behind: %v", entries)
	}
	return string(b), warns, err
}

const editCF = "# head\nsmtp inet n - y - - smtpd\n# inside\n  -o a=1 -v\n\tflag\npickup unix n - y 60 1 pickup\r\n"

func TestEditMasterKeepsCommentsAndOtherEntries(t *testing.T) {
	for _, tc := range []struct {
		part MasterPart
		mode EditMode
		args []string
		want string
	}{
		// -F and -P write the entry where it ended, after its comments.
		{MasterField, EditSet, []string{"smtp/inet/chroot = n"},
			"# head\n# inside\nsmtp       inet  n       -       n       -       -       smtpd\n    -o a=1\n    -v flag\npickup unix n - y 60 1 pickup\r\n"},
		{MasterParam, EditSet, []string{"smtp/inet/b=2"},
			"# head\n# inside\nsmtp       inet  n       -       y       -       -       smtpd\n    -o a=1\n    -v\n    -o b=2\n    flag\npickup unix n - y 60 1 pickup\r\n"},
		{MasterParam, EditRemove, []string{"smtp/inet/a"},
			"# head\n# inside\nsmtp       inet  n       -       y       -       -       smtpd -v flag\npickup unix n - y 60 1 pickup\r\n"},
		// -M replaces the entry at its first line.
		{MasterEntry, EditSet, []string{"smtp/inet = smtp inet n - n - - smtpd"},
			"# head\nsmtp       inet  n       -       n       -       -       smtpd\n# inside\npickup unix n - y 60 1 pickup\r\n"},
		{MasterEntry, EditSet, []string{"new/unix = new unix - - n - - error"},
			editCF + "new        unix  -       -       n       -       -       error\n"},
		{MasterEntry, EditRemove, []string{"smtp/inet"}, "# head\n# inside\npickup unix n - y 60 1 pickup\r\n"},
		{MasterEntry, EditComment, []string{"*/unix"}, "# head\nsmtp inet n - y - - smtpd\n# inside\n  -o a=1 -v\n\tflag\n#pickup unix n - y 60 1 pickup\r\n"},
	} {
		got, _, err := editMaster(t, editCF, tc.part, tc.mode, tc.args...)
		if err != nil || got != tc.want {
			t.Errorf("%v %q: err %v\n got %q\nwant %q", tc.part.flag(), tc.args, err, got, tc.want)
		}
	}
}

func TestEditMasterBadRequests(t *testing.T) {
	for _, tc := range []struct {
		part MasterPart
		mode EditMode
		args []string
		want string
	}{
		{MasterEntry, EditSet, nil, "-e requires name=value argument"},
		{MasterEntry, EditRemove, nil, "missing service argument"},
		{MasterEntry, EditSet, []string{"smtp = x"}, "-Me, -MX or -M# requires service_name/type"},
		{MasterEntry, EditSet, []string{"smtp/inet = smtp inet n"}, `bad field count: "smtp/inet = smtp inet n"`},
		{MasterEntry, EditSet, []string{"smtp/inet"}, `missing '=' after attribute name: "smtp/inet"`},
		{MasterField, EditSet, []string{"smtp/inet/bogus = 1"}, `invalid service attribute name: "bogus"`},
		{MasterField, EditSet, []string{"smtp/inet/chroot = a\tb"}, "-Fe does not accept whitespace in non-command field"},
		{MasterField, EditRemove, []string{"smtp/inet/chroot"}, "with option -F, do not specify -X"},
		{MasterParam, EditComment, []string{"smtp/inet/a"}, "with option -P, do not specify -#"},
		{MasterParam, EditSet, []string{"smtp/inet/a = b c"}, "-Pe does not accept whitespace in parameter value"},
		{MasterParam, EditRemove, []string{"smtp/inet"}, "-Pe or -PX requires service_name/type/parameter"},
		// A valid request does not get applied when a later one is bad.
		{MasterParam, EditSet, []string{"smtp/inet/a=2", "x"}, `missing '=' after attribute name: "x"`},
	} {
		got, _, err := editMaster(t, editCF, tc.part, tc.mode, tc.args...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v %q: err %v, want %q", tc.part.flag(), tc.args, err, tc.want)
		}
		if got != editCF {
			t.Errorf("%v %q changed the file:\n%q", tc.part.flag(), tc.args, got)
		}
	}
}

func TestEditMasterUnmatched(t *testing.T) {
	got, warns, err := editMaster(t, editCF, MasterParam, EditSet, "nosuch/unix/a=1")
	if err != nil || got != editCF || strings.Join(warns, "|") != `unmatched service_name/type: "nosuch/unix/a=1"` {
		t.Errorf("err %v, warnings %q, file %q", err, warns, got)
	}
	// -MX of a missing entry is silent.
	if _, warns, err := editMaster(t, editCF, MasterEntry, EditRemove, "nosuch/unix"); err != nil || len(warns) != 0 {
		t.Errorf("-MX nosuch: %v %q", err, warns)
	}
}

func TestEditMasterBadFiles(t *testing.T) {
	// No newline at the end: the new entry still starts a line of its own.
	got, _, err := editMaster(t, "last unix - - n - - error", MasterEntry, EditSet, "new/unix = new unix - - n - - error")
	if err != nil || got != "last unix - - n - - error\nnew        unix  -       -       n       -       -       error\n" {
		t.Errorf("no final newline: %v %q", err, got)
	}
	// A 1 MB command line and binary junk in a comment survive untouched.
	long := "big unix - - n - - pipe argv=" + strings.Repeat("x", 1<<20) + "\n# \x00\xff\x01 junk\n"
	got, _, err = editMaster(t, long+"smtp inet n - y - - smtpd\n", MasterField, EditSet, "smtp/inet/chroot=n")
	if err != nil || !strings.HasPrefix(got, long) || !strings.HasSuffix(got, "smtp       inet  n       -       n       -       -       smtpd\n") {
		t.Errorf("1 MB line: %v %.80q", err, got)
	}
	// A broken entry is reported with its line, and nothing is written.
	got, _, err = editMaster(t, "# c\nsmtp inet n\n", MasterEntry, EditRemove, "smtp/inet")
	if err == nil || !strings.HasSuffix(err.Error(), "master.cf: line 2: bad field count") || got != "# c\nsmtp inet n\n" {
		t.Errorf("bad entry: %v %q", err, got)
	}
	// Missing, and unreadable (a directory).
	dir := t.TempDir()
	if err := EditMaster(dir, MasterEntry, EditRemove, []string{"smtp/inet"}, nil); err == nil || err.Error() != "open "+filepath.Join(dir, "master.cf")+" for reading: No such file or directory" {
		t.Errorf("missing master.cf: %v", err)
	}
	os.Mkdir(filepath.Join(dir, "master.cf"), 0o755)
	if err := EditMaster(dir, MasterEntry, EditRemove, []string{"smtp/inet"}, nil); err == nil || err.Error() != "read "+filepath.Join(dir, "master.cf")+": Is a directory" {
		t.Errorf("directory master.cf: %v", err)
	}
}

func TestMasterParsingLikePostfix(t *testing.T) {
	s, err := parseService("f unix - - n - - smtpd -v -oa=1 -o b=2 -o c x -o d=4")
	if err != nil {
		t.Fatal(err)
	}
	// Daemon options end at the first plain word; "-o c" sets nothing.
	if len(s.Options) != 2 || s.Options[0] != [2]string{"a", "1"} || s.Options[1] != [2]string{"b", "2"} {
		t.Errorf("options = %q", s.Options)
	}
	if got := s.commandLine(); got != "smtpd -v -o a=1 -o b=2 -o c x -o d=4" {
		t.Errorf("command line = %q", got)
	}
	want := "f          unix  -       -       n       -       -       smtpd -v\n    -o a=1\n    -o b=2\n    -o c\n    x -o d=4"
	if got := s.Format(true); got != want {
		t.Errorf("folded:\n%s\nwant:\n%s", got, want)
	}
}

func TestStrayLineWarning(t *testing.T) {
	dir := writeConf(t, " \ta\x01\r\n# c\n  b \r\nmyhostname = x\r\n", "")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "main.cf") + `: logical line must not start with whitespace: " ?a??  b ?"`
	if w := c.Warnings(); len(w) == 0 || w[0] != want {
		t.Errorf("warnings = %q, want %q first", w, want)
	}
	if c.Get("myhostname") != "x" {
		t.Errorf("myhostname = %q", c.Get("myhostname"))
	}
}
