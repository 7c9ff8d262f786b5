// Package postmulti is postdove's postmulti(1). postdove runs one mail
// system per machine, so postmulti answers as Postfix's does on a machine
// where multi-instance support was never initialized: "postmulti -l" lists
// the default instance (/etc/postfix), "-x command" and "-p command" run a
// command (or "postfix command") for it with Postfix's environment
// (MAIL_CONFIG, MAIL_LOGTAG and the instance's directory parameters), and
// "-e" actions that would create, import, enable, disable or assign other
// instances are refused with Postfix's messages; "-e init" is refused too,
// since postdove cannot run the instances it would prepare.
//
// API: Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int.
package postmulti

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"postdove/pkg/postconf"
	"postdove/pkg/postqueue"
	"postdove/pkg/syserr"
)

// Usage is postmulti's usage message, as Postfix's prints it.
const Usage = "Usage:postmulti -l [-v] [-a] [-g group] [-i instance] | postmulti -p [-v] [-a] [-g group] [-i instance] command... | postmulti -x [-v] [-a] [-i name] [-g group] command... | postmulti -e action [-v] [-a] [-i name] [-g group] [-I name] [-G group] [param=value ...]"

// actions are the -e edit actions Postfix's postmulti knows.
var actions = []string{"create", "destroy", "import", "deport", "enable", "disable", "assign", "init"}

// notInitialized is what Postfix's postmulti-script says about an action
// on a machine where "postmulti -e init" never ran.
const notInitialized = "postfix/postmulti-script: fatal: multi_instance_wrapper is empty, run 'postmulti -e init' first."

// Env is where Main runs: the default configuration directory and the
// environment (MAIL_CONFIG) it checks.
type Env struct {
	ConfigDir string // postconf.DefaultConfigDir when empty
	Getenv    func(string) string
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
}

// exitError is a fatal message and exit status 1.
type exitError struct{ msg string }

func (e *exitError) Error() string { return e.msg }

func fatalf(format string, a ...any) error {
	return &exitError{"postmulti: fatal: " + fmt.Sprintf(format, a...)}
}

// options is the parsed command line.
type options struct {
	all                  bool
	action               string
	group, newGroup      string
	name, newName        string
	list, postfix, xcmds bool
	args                 []string
	set                  map[string]bool // which of -e -g -i were given
}

// Main runs postmulti with args (without the program name) and returns its
// exit status.
func Main(args []string, env Env) int {
	if env.ConfigDir == "" {
		env.ConfigDir = postconf.DefaultConfigDir
	}
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	err := run(args, env)
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintln(env.Stderr, ee.msg)
		}
	default:
		fmt.Fprintf(env.Stderr, "postmulti: fatal: %v\n", err)
	}
	return 1
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{set: map[string]bool{}}
	fs := pflag.NewFlagSet("postmulti", pflag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false)
	fs.BoolVarP(&o.all, "all", "a", false, "")
	fs.StringVarP(&o.action, "edit", "e", "", "")
	fs.StringVarP(&o.group, "group", "g", "", "")
	fs.StringVarP(&o.newGroup, "new-group", "G", "", "")
	fs.StringVarP(&o.name, "instance", "i", "", "")
	fs.StringVarP(&o.newName, "new-instance", "I", "", "")
	fs.BoolVarP(&o.list, "list", "l", false, "")
	fs.BoolVarP(&o.postfix, "postfix", "p", false, "")
	fs.CountP("verbose", "v", "")
	fs.BoolVarP(&o.xcmds, "execute", "x", false, "")
	if err := fs.Parse(args); err != nil {
		if msg := postqueue.GetoptMessage("postmulti", err); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return nil, fatalf("%s", Usage)
	}
	for _, f := range []string{"edit", "group", "instance"} {
		o.set[f] = fs.Changed(f)
	}
	o.args = fs.Args()
	modes := 0
	for _, m := range []bool{o.set["edit"], o.list, o.postfix, o.xcmds} {
		if m {
			modes++
		}
	}
	switch {
	case modes != 1:
		return nil, fatalf("Specify exactly one of '-e', '-l', '-p', '-x'")
	case (o.postfix || o.xcmds) && len(o.args) == 0:
		return nil, fatalf("Command required with '-p' or '-x' option")
	case o.list && len(o.args) > 0:
		return nil, fatalf("Command not allowed with '-l'")
	}
	return o, nil
}

func run(args []string, env Env) error {
	o, err := parse(args, env.Stderr)
	if err != nil {
		return err
	}
	if mc := env.Getenv("MAIL_CONFIG"); mc != "" && filepath.Clean(mc) != filepath.Clean(env.ConfigDir) {
		return fatalf("Non-default configuration directory: MAIL_CONFIG=%s", mc)
	}
	cfg, err := postconf.Load(env.ConfigDir)
	if err != nil {
		return err
	}
	if o.set["edit"] {
		return edit(o, cfg)
	}
	selected := o.all || (!o.set["instance"] || o.isPrimary(cfg)) && (!o.set["group"] || o.group == cfg.Get("multi_instance_group"))
	if o.list {
		if selected {
			fmt.Fprintf(env.Stdout, "%-15s %-15s %-9s %s\n", dash(cfg.Get("multi_instance_name")), dash(cfg.Get("multi_instance_group")), "y", cfg.Dir())
		}
		return nil
	}
	if !selected {
		return fatalf("No matching instances")
	}
	argv := o.args
	if o.postfix {
		argv = append([]string{filepath.Join(cfg.Get("command_directory"), "postfix"), "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.Stdin, env.Stdout, env.Stderr
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+cfg.Dir(), "MAIL_LOGTAG="+cfg.Get("syslog_name"))
	for _, p := range []string{"daemon_directory", "command_directory", "queue_directory", "data_directory", "multi_instance_name", "multi_instance_group"} {
		cmd.Env = append(cmd.Env, p+"="+cfg.Get(p))
	}
	// The default instance is always enabled.
	cmd.Env = append(cmd.Env, "config_directory="+cfg.Dir(), "multi_instance_enable=yes")
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return &exitError{}
	}
	var pe *exec.Error
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fatalf("execvp %s: %s", argv[0], syserr.Text(err))
}

// isPrimary tells whether -i names the default instance: "-", its
// configuration directory or its multi_instance_name.
func (o *options) isPrimary(cfg *postconf.Config) bool {
	name := cfg.Get("multi_instance_name")
	return o.name == "-" || filepath.Clean(o.name) == filepath.Clean(cfg.Dir()) || name != "" && o.name == name
}

// edit answers -e: nothing can be changed on a single-instance system.
func edit(o *options, cfg *postconf.Config) error {
	known := false
	for _, a := range actions {
		known = known || a == o.action
	}
	if !known {
		return fatalf("Invalid '-e' edit action '%s'. Specify 'create', 'destroy', 'import', 'deport', 'enable', 'disable', 'assign' or 'init'", o.action)
	}
	switch o.action {
	case "init":
		return fatalf("postdove runs a single instance: multi-instance support cannot be initialized")
	case "create", "import":
		if o.newName != "" && !strings.HasPrefix(o.newName, "postfix-") {
			return fatalf("New instance name must start with 'postfix-'")
		}
		if o.newName == "" && !hasParam(o.args, "config_directory") {
			return fatalf("Missing config_directory parameter value")
		}
		return &exitError{notInitialized}
	}
	switch {
	case !o.set["instance"]:
		return fatalf("Select an instance via '-i name'")
	case !o.isPrimary(cfg):
		return fatalf("No instance named %s", o.name)
	case o.action == "destroy" || o.action == "deport":
		return fatalf("Cannot remove the primary instance")
	}
	return &exitError{notInitialized}
}

func hasParam(args []string, name string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
