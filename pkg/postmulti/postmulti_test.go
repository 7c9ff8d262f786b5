package postmulti

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMain(t *testing.T, dir string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, Env{ConfigDir: dir, Getenv: func(k string) string { return env[k] }, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestSingleInstance(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("multi_instance_group = mta\nsyslog_name = pf\n"), 0o644)
	if code, out, _ := runMain(t, dir, nil, "-l"); code != 0 || out != "-               mta             y         "+dir+"\n" {
		t.Errorf("-l: %d %q", code, out)
	}
	if code, out, _ := runMain(t, dir, nil, "-l", "-g", "other"); code != 0 || out != "" {
		t.Errorf("-l -g other: %d %q", code, out)
	}
	code, out, errs := runMain(t, dir, nil, "-g", "mta", "-x", "sh", "-c", `echo "$MAIL_CONFIG $MAIL_LOGTAG $multi_instance_group $#"`, "sh", "a")
	if code != 0 || out != dir+" pf mta 1\n" {
		t.Errorf("-x: %d %q %q", code, out, errs)
	}
	if code, _, _ := runMain(t, dir, nil, "-x", "false"); code != 1 {
		t.Errorf("-x false: exit %d", code)
	}
	for args, want := range map[string]string{
		"-e init":            "postmulti: fatal: postdove runs a single instance: multi-instance support cannot be initialized\n",
		"-e enable -i -":     notInitialized + "\n",
		"-e destroy -i -":    "postmulti: fatal: Cannot remove the primary instance\n",
		"-i nosuch -x true":  "postmulti: fatal: No matching instances\n",
		"-l -p":              "postmulti: fatal: Specify exactly one of '-e', '-l', '-p', '-x'\n",
		"-e create -I other": "postmulti: fatal: New instance name must start with 'postfix-'\n",
	} {
		if code, _, errs := runMain(t, dir, nil, strings.Fields(args)...); code != 1 || errs != want {
			t.Errorf("%s: exit %d, %q; want %q", args, code, errs, want)
		}
	}
	if code, _, errs := runMain(t, dir, map[string]string{"MAIL_CONFIG": "/elsewhere"}, "-l"); code != 1 || !strings.Contains(errs, "Non-default configuration directory: MAIL_CONFIG=/elsewhere") {
		t.Errorf("MAIL_CONFIG: %d %q", code, errs)
	}
}
