// Package oracle runs Debian's real Postfix (and Dovecot) as the reference
// the compat/ tests compare postdove with. The packages are unpacked off the
// system paths by compat/fetch-oracle.sh, so the oracle can never shadow, or
// be shadowed by, an installed postdove.
package oracle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Oracle is one unpacked copy of Debian's postfix/dovecot packages.
type Oracle struct {
	Root string // the dpkg -x folder: Root/usr/sbin/postconf ...
}

var (
	once    sync.Once
	found   *Oracle
	findErr error
)

// Dir is where the oracle lives: $POSTDOVE_ORACLE, else
// /var/cache/postdove-oracle.
func Dir() string {
	if d := os.Getenv("POSTDOVE_ORACLE"); d != "" {
		return d
	}
	return "/var/cache/postdove-oracle"
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Get returns the oracle, unpacking it on first use. When it cannot be had,
// the test fails under CI (CI=true) and is skipped elsewhere.
func Get(t testing.TB) *Oracle {
	t.Helper()
	once.Do(func() {
		dir := Dir()
		if _, err := os.Stat(filepath.Join(dir, "root/usr/sbin/postconf")); err != nil {
			cmd := exec.Command("sh", filepath.Join(repoRoot(), "compat/fetch-oracle.sh"), dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				findErr = errors.New("fetch-oracle.sh: " + err.Error() + ": " + string(out))
				return
			}
		}
		found = &Oracle{Root: filepath.Join(dir, "root")}
	})
	if findErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("oracle unavailable: %v", findErr)
		}
		t.Skipf("oracle unavailable: %v", findErr)
	}
	return found
}

// LibDir holds Postfix's shared libraries and its lmdb/cdb/pcre plugins.
func (o *Oracle) LibDir() string { return filepath.Join(o.Root, "usr/lib/postfix") }

// MetaDir holds dynamicmaps.cf for the plugins.
func (o *Oracle) MetaDir() string { return filepath.Join(o.Root, "etc/postfix") }

// DynamicMapsConfig is what a main.cf needs so that the oracle finds its
// lmdb, cdb and pcre plugins. Tests that compare postconf -n output filter
// these two names out.
func (o *Oracle) DynamicMapsConfig() string {
	return "shlib_directory = " + o.LibDir() + "\nmeta_directory = " + o.MetaDir() + "\n"
}

// Command returns an exec.Cmd for one of the oracle's programs
// ("postconf", "postmap", "postalias", "dovecot", "doveconf", ...), with
// LD_LIBRARY_PATH pointing at the oracle's libraries.
func (o *Oracle) Command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(o.Root, "usr/sbin", name)
	for _, dir := range []string{"usr/sbin", "usr/bin", "usr/lib/postfix/sbin", "usr/lib/dovecot"} {
		p := filepath.Join(o.Root, dir, name)
		if _, err := os.Stat(p); err == nil {
			path = p
			break
		}
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+o.LibDir()+":"+filepath.Join(o.Root, "usr/lib/dovecot"))
	return cmd
}

// Result is what one run printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs cmd with stdin and collects its output and exit code.
func Run(cmd *exec.Cmd, stdin string) Result {
	var out, errb bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// RunLimit is Run with a time limit: a command still running after limit
// is killed, and so is the wait for its output (a process it left behind
// may hold the pipes), and the Result says so, with Code -1.
func RunLimit(cmd *exec.Cmd, stdin string, limit time.Duration) Result {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env, c.Dir, c.SysProcAttr = cmd.Env, cmd.Dir, cmd.SysProcAttr
	c.WaitDelay = time.Second
	res := Run(c, stdin)
	if ctx.Err() != nil {
		res.Code = -1
		res.Stderr += fmt.Sprintf("\n(%s did not finish within %v)", filepath.Base(cmd.Path), limit)
	}
	return res
}

// StderrShape reduces stderr to what must match between the oracle and
// postdove: the program name is dropped from each "prog: warning: ..." /
// "prog: fatal: ..." line, and paths are left as they are.
func StderrShape(stderr string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if l == "" {
			continue
		}
		if i := strings.Index(l, ": "); i > 0 && !strings.Contains(l[:i], " ") {
			l = l[i+2:]
		}
		lines = append(lines, l)
	}
	return lines
}

// Postdove returns the path of one of postdove's built commands in bin/,
// building them first (once per test binary) with `make`.
func Postdove(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("make", "-s", "build")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("make build: %v", buildErr)
	}
	p, _ := filepath.Abs(filepath.Join(repoRoot(), "bin", name))
	return p
}

var (
	buildOnce sync.Once
	buildErr  error
)
