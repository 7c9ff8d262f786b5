package compat

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"postdove/compat/oracle"
)

// postmultiScript mounts an overlay on /etc in a private mount namespace,
// so that /etc/postfix (postmulti works only there) holds the test's
// main.cf, then runs the command (its words must not hold spaces).
// Postfix's postmulti prints its messages only on a terminal: script(1)
// gives both one.
const postmultiScript = `mount -t overlay overlay -o lowerdir=/etc,upperdir="$UPPER",workdir="$WORK" /etc || exit 99
exec script -qec "$*" /dev/null`

// TestPostmultiMatchesPostfix runs postmulti as a single-instance system
// sees it (-l, -x, -p, instance and group selection, the -e actions that
// need multi-instance support, bad usage) with Postfix's and postdove's
// /etc/postfix, and compares the exit codes and what each printed.
func TestPostmultiMatchesPostfix(t *testing.T) {
	o := oracle.Get(t)
	if os.Geteuid() != 0 {
		t.Skip("mount namespaces need root")
	}
	bin := filepath.Dir(oracle.Postdove(t, "postmulti"))
	show := "#!/bin/sh\necho \"$# $*\"; env | grep -E '^(MAIL_CONFIG|MAIL_LOGTAG|config_directory|multi_instance_[a-z]*)=' | sort\n"
	var got [2][]string
	for i, sys := range []struct{ sbin, daemon string }{
		{filepath.Join(o.Root, "usr/sbin"), filepath.Join(o.LibDir(), "sbin")},
		{bin, bin},
	} {
		dir := t.TempDir()
		// Named as Postfix's, so that postmulti -e create can derive the
		// new instance's folders from them.
		upper, work, queue, data := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "spool/postfix"), filepath.Join(dir, "lib/postfix")
		for _, d := range []string{upper + "/postfix", work, queue, data} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mainCF := fmt.Sprintf("compatibility_level = 3.6\nqueue_directory = %s\ncommand_directory = %s\ndaemon_directory = %s\ndata_directory = %s\n", queue, sys.sbin, sys.daemon, data)
		if i == 0 {
			// The oracle's programs find their libraries through
			// LD_LIBRARY_PATH, which postmulti passes on only when told.
			mainCF += o.DynamicMapsConfig() + "import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH\n" +
				"export_environment = TZ MAIL_CONFIG LANG LD_LIBRARY_PATH\n"
		}
		files := map[string]string{"main.cf": mainCF, "master.cf": "", "show.sh": show, "fail.sh": "#!/bin/sh\nexit 4\n"}
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(upper, "postfix", name), []byte(text), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, args := range []string{
			"-l", "-l -a", "-l -i -", "-l -i /etc/postfix", "-l -i foo", "-l -g grp", "-l -v",
			"-x /etc/postfix/show.sh a b", "-i - -x /etc/postfix/show.sh", "-x /etc/postfix/fail.sh", "-x /nonexistent",
			"-i foo -x true", "-g grp -x true", "-p status",
			"", "-x", "-p", "-l extra", "-l -x true", "-z",
			"-e bogus", "-e create", "-e create -I x", "-e create -I postfix-out", "-e import",
			"-e destroy", "-e destroy -i -", "-e deport -i -", "-e enable -i foo", "-e enable -i -", "-e disable -i -", "-e assign -i - -G g",
			"MAIL_CONFIG", // -l with MAIL_CONFIG naming another configuration
		} {
			words := strings.Fields(args)
			if args == "MAIL_CONFIG" {
				words = []string{"-l"}
			}
			cmd := o.Command("postmulti", words...)
			if i == 1 {
				cmd = exec.Command(filepath.Join(bin, "postmulti"), words...)
			}
			cmd.Args = append([]string{"unshare", "-m", "sh", "-c", postmultiScript, "sh", cmd.Path}, cmd.Args[1:]...)
			cmd.Path, _ = exec.LookPath("unshare")
			if cmd.Env == nil {
				cmd.Env = os.Environ()
			}
			cmd.Env = append(cmd.Env, "UPPER="+upper, "WORK="+work)
			if args == "MAIL_CONFIG" {
				cmd.Env = append(cmd.Env, "MAIL_CONFIG="+filepath.Join(upper, "postfix"))
			}
			res := oracle.Run(cmd, "")
			if res.Code == 99 {
				t.Skipf("cannot mount an overlay on /etc: %s", res.Stderr)
			}
			out := strings.ReplaceAll(strings.ReplaceAll(res.Stdout, "\r\n", "\n"), dir, "DIR")
			got[i] = append(got[i], fmt.Sprintf("postmulti %s: exit %d", args, res.Code))
			got[i] = append(got[i], oracle.StderrShape(out)...)
		}
	}
	a, b := strings.Join(got[0], "\n"), strings.Join(got[1], "\n")
	if a != b {
		t.Errorf("postfix:\n%s\n\npostdove:\n%s", a, b)
	}
}
