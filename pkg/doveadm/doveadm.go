package doveadm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"postdove/pkg/auth"
	"postdove/pkg/doveconf"
	"postdove/pkg/dovecot"
)

// Exit codes (sysexits.h), as doveadm uses them.
const (
	exitUsage    = 64
	exitNoUser   = 67
	exitTempFail = 75
	exitNoPerm   = 77
)

// env is one doveadm run.
type env struct {
	config         string
	stdin          io.Reader
	stdout, stderr io.Writer
	// tty is where passwords are asked for; nil to read stdin.
	tty *os.File
}

const usage = `usage: doveadm [-Dv] [-f <formatter>] <command> [<args>]

  auth         cache|login|lookup|test
  pw           [-l] [-p plaintext] [-r rounds] [-s scheme] [-t hash] [-u user] [-V]
  user         [-a <userdb socket path>] [-x <auth info>] [-f field] [-e <value>] [-u] <user mask> [<user mask> [...]]
`

// Main runs doveadm with args (args[0] is the program's name) and returns
// its exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{config: doveconf.DefaultPath, stdin: stdin, stdout: stdout, stderr: stderr}
	if f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		defer f.Close()
		e.tty = f
	}
	rest := args[1:]
	// Global options come before the command; getopt stops at the first
	// word that is not one.
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") && rest[0] != "-" {
		opt := rest[0]
		rest = rest[1:]
		if opt == "--" {
			break
		}
		switch opt[1] {
		case 'D', 'v':
			// Debug and verbose output: nothing more to say in process.
		case 'c', 'f', 'o':
			val := opt[2:]
			if val == "" {
				if len(rest) == 0 {
					fmt.Fprint(stderr, usage)
					return exitUsage
				}
				val, rest = rest[0], rest[1:]
			}
			if opt[1] == 'c' {
				e.config = val
			}
		default:
			fmt.Fprint(stderr, usage)
			return exitUsage
		}
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch rest[0] {
	case "pw":
		return e.pw(rest)
	case "auth":
		if len(rest) < 2 || rest[1] != "test" {
			fmt.Fprint(stderr, authUsage)
			return exitUsage
		}
		return e.authTest(rest[1:])
	case "user":
		return e.user(rest)
	case "stop", "reload":
		return e.master(rest[0])
	}
	fmt.Fprintf(stderr, "%s: Fatal: Unknown command '%s'\n", "doveadm", rest[0])
	fmt.Fprint(stderr, usage)
	return exitUsage
}

// master stops or reloads the running dovecot master, as doveadm stop
// and doveadm reload do.
func (e *env) master(verb string) int {
	pidFile, err := dovecot.PIDFile(e.config)
	if err == nil {
		if verb == "stop" {
			err = dovecot.Stop(pidFile)
		} else {
			err = dovecot.Reload(pidFile)
		}
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "Fatal: %v\n", err)
		return doveconf.ExitFatal
	}
	return 0
}

const authUsage = `usage: doveadm [-Dv] [-f <formatter>] auth <command> [<args>]
  test         [-a <auth socket path>] [-x <auth info>] [-M <master user>] <user> [<password>]
`

// getopt parses a command's options as getopt(3) does: spec lists the
// letters, each followed by ':' when it takes a value. It returns the
// options in order and the remaining words, or getopt's message for an
// unknown or incomplete option ("pw: invalid option -- 'x'").
func getopt(cmd string, args []string, spec string) (opts [][2]string, rest []string, msg string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return opts, args[i+1:], ""
		}
		if len(a) < 2 || a[0] != '-' {
			return opts, args[i:], ""
		}
		for j := 1; j < len(a); j++ {
			k := strings.IndexByte(spec, a[j])
			if k < 0 || a[j] == ':' {
				return nil, nil, fmt.Sprintf("%s: invalid option -- '%c'", cmd, a[j])
			}
			if k+1 < len(spec) && spec[k+1] == ':' {
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, nil, fmt.Sprintf("%s: option requires an argument -- '%c'", cmd, a[j])
					}
					i++
					val = args[i]
				}
				opts = append(opts, [2]string{string(a[j]), val})
				break
			}
			opts = append(opts, [2]string{string(a[j]), ""})
		}
	}
	return opts, nil, ""
}

func (e *env) fatal(code int, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "Fatal: "+format+"\n", args...)
	return code
}

// authenticator loads the configuration and builds the passdbs and
// userdbs, as the auth process would for service "doveadm".
func (e *env) authenticator() (*auth.Authenticator, int) {
	cfg, err := doveconf.Load(e.config)
	if err != nil {
		fmt.Fprintf(e.stderr, "doveconf: Fatal: %s\n", err)
		return nil, doveconf.ExitFatal
	}
	a, err := auth.New(cfg.For(doveconf.Match{Protocol: "doveadm"}))
	if err != nil {
		return nil, e.fatal(doveconf.ExitFatal, "auth: %s", err)
	}
	a.Logf = func(format string, args ...any) {
		fmt.Fprintf(e.stderr, "Error: auth: "+format+"\n", args...)
	}
	return a, 0
}

// askPassword prompts on the terminal with echo off, as t_askpass does;
// without a terminal it reads a line from stdin.
func (e *env) askPassword(prompt string) (string, error) {
	if e.tty == nil {
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(e.tty, prompt)
	fd := int(e.tty.Fd())
	if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		quiet := *t
		quiet.Lflag &^= unix.ECHO
		unix.IoctlSetTermios(fd, unix.TCSETS, &quiet)
		defer unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}
	line, err := bufio.NewReader(e.tty).ReadString('\n')
	fmt.Fprintln(e.tty)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

var background = context.Background
