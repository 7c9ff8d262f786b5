package postfix

import (
	"errors"
	"fmt"
	"io"
	"os"
	"postdove/pkg/syserr"
	"sort"
	"sync"
)

// Usage is what postfix prints (as a fatal error) for a bad option.
const Usage = "usage: postfix [-c config_dir] [-Dv] command"

// Program names used as message prefixes, as Postfix prints them.
const (
	progPostfix = "postfix"
	progScript  = "postfix/postfix-script"
)

// Env is what every command gets: the parsed flags and where to write.
type Env struct {
	// ConfigDir is the -c argument, or "" for the default
	// (MAIL_CONFIG, else /etc/postfix).
	ConfigDir string
	// Debug is -D (run daemons under the debugger_command).
	Debug bool
	// Verbose counts -v flags.
	Verbose int
	// Stdout and Stderr receive output and diagnostics.
	Stdout, Stderr io.Writer
}

// Fatal is an error that ends the command with exit status 1; Prog is the
// prefix Postfix prints it with ("postfix" or "postfix/postfix-script").
type Fatal struct {
	Prog string
	Msg  string
}

func (f *Fatal) Error() string { return f.Prog + ": fatal: " + f.Msg }

func fatalf(prog, format string, a ...any) error {
	return &Fatal{Prog: prog, Msg: fmt.Sprintf(format, a...)}
}

// ExitCode maps an error returned by Run to the process exit status.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	return 1
}

// Command runs one postfix subcommand; args are the words after it.
type Command func(env *Env, args []string) error

var (
	mu       sync.RWMutex
	commands = map[string]Command{}
)

// Register adds a subcommand (e.g. "start"). It panics on a duplicate name,
// which is a programming error caught by any test.
func Register(name string, cmd Command) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := commands[name]; dup {
		panic("postfix: command registered twice: " + name)
	}
	commands[name] = cmd
}

// Commands lists the registered subcommands, sorted.
func Commands() []string {
	mu.RLock()
	defer mu.RUnlock()
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// unknownCommand is postfix-script's message for a command it lacks.
func unknownCommand(name string) error {
	return fatalf(progScript, "unknown command: '%s'. Usage: postfix start (or stop, reload, abort, flush, check, status, set-permissions, upgrade-configuration, logrotate)", name)
}

// Run dispatches "postfix COMMAND ARGS...". args[0] is the command; with
// no command it is Postfix's "unknown command" error. Like Postfix, only the
// superuser may run it, and main.cf must be readable first.
func Run(env *Env, args []string) error {
	if os.Geteuid() != 0 {
		env.warn(progPostfix, "error", "to submit mail, use the Postfix sendmail command")
		return fatalf(progPostfix, "the postfix command is reserved for the superuser")
	}
	if err := readable(configFile(env, "main.cf")); err != nil {
		return err
	}
	name := ""
	if len(args) > 0 {
		name = args[0]
		args = args[1:]
	}
	mu.RLock()
	cmd, ok := commands[name]
	mu.RUnlock()
	if !ok {
		return unknownCommand(name)
	}
	return cmd(env, args)
}

// readable reports Postfix's fatal error for a main.cf it cannot open.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fatalf(progPostfix, "open %s: %s", path, syserr.Text(err))
	}
	defer f.Close()
	// A directory opens fine but cannot be read as a file.
	if _, err := f.Read(make([]byte, 1)); err != nil && !errors.Is(err, io.EOF) {
		return fatalf(progPostfix, "%s: read error: %s", path, syserr.Text(err))
	}
	return nil
}

// warn prints "prog: level: msg" as Postfix does.
func (env *Env) warn(prog, level, msg string) {
	fmt.Fprintf(env.Stderr, "%s: %s: %s\n", prog, level, msg)
}

func (env *Env) warnf(prog, format string, a ...any) {
	env.warn(prog, "warning", fmt.Sprintf(format, a...))
}
