package sendmail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"postdove/pkg/maillog"
	"postdove/pkg/postconf"
	"postdove/pkg/postdrop"
	"postdove/pkg/postmap"
	"postdove/pkg/queue"
)

// ExTempFail is sendmail's exit status for every fatal error, as
// Postfix's.
const ExTempFail = 75

type run struct {
	o      *Options
	cfg    *postconf.Config
	stdout io.Writer
	stderr io.Writer
	uid    int
	login  string
	log    *maillog.Logger
}

func (r *run) fatal(format string, args ...any) int {
	r.logger().Log(maillog.LevelFatal, format, args...)
	return ExTempFail
}

// logger reports on stderr and to the maillog, as Postfix's sendmail does;
// before main.cf is read, with the default settings.
func (r *run) logger() *maillog.Logger {
	if r.log == nil {
		var get func(string) string
		if r.cfg != nil {
			get = r.cfg.Get
		}
		r.log = maillog.ForCommand(get, "sendmail", r.stderr)
	}
	return r.log
}

// Main runs sendmail (or mailq/newaliases, by argv[0]) and returns its
// exit status.
func Main(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	r := &run{stdout: stdout, stderr: stderr, uid: os.Getuid()}
	o, err := Parse(argv)
	if err != nil {
		var ue *UsageError
		if errors.As(err, &ue) {
			for _, w := range ue.Warnings {
				r.logger().Warning("%s", w)
			}
			if ue.Msg != "" {
				fmt.Fprintf(stderr, "sendmail: %s\n", ue.Msg)
			}
		}
		return r.fatal("%s", err.Error())
	}
	r.o = o
	for _, w := range o.Warnings {
		r.logger().Warning("%s", w)
	}
	dir := o.Config
	if dir != "" {
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			dir = filepath.Dir(dir)
		}
	}
	r.cfg, err = postconf.Load(postconf.ConfigDir(dir))
	if err != nil {
		return r.fatal("%v", err)
	}
	r.login = loginName(r.uid)
	switch o.Mode {
	case ModePrintQueue:
		return r.exec("postqueue", "-p")
	case ModeFlush:
		return r.exec("postqueue", "-f")
	case ModeFlushSite:
		return r.exec("postqueue", "-s", o.FlushSite)
	case ModeFlushID:
		return r.exec("postqueue", "-i", o.FlushID)
	case ModeDaemon:
		return r.startSystem()
	case ModeIgnore:
		return 0
	case ModeNewAliases:
		return postmap.Newaliases(r.cfg.Dir(), r.stderr)
	case ModeSMTP:
		return r.smtp(stdin)
	case ModeVerify:
		return r.verify()
	}
	return r.deliver(stdin)
}

// loginName is the login name of uid, or its number when unknown.
func loginName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// fullName is -F, else $NAME, else the user's GECOS name.
func (r *run) fullName() string {
	if r.o.FullName != "" {
		return r.o.FullName
	}
	if n := os.Getenv("NAME"); n != "" {
		return n
	}
	if u, err := user.LookupId(strconv.Itoa(r.uid)); err == nil {
		return strings.SplitN(u.Name, ",", 2)[0]
	}
	return ""
}

func (r *run) sender() string {
	if r.o.SenderSet {
		return r.o.Sender
	}
	return r.login
}

// exec runs one of the Postfix commands in command_directory with -c.
func (r *run) exec(name string, args ...string) int {
	path := filepath.Join(r.cfg.Get("command_directory"), name)
	cmd := exec.Command(path, append([]string{"-c", r.cfg.Dir()}, args...)...)
	cmd.Stdout, cmd.Stderr = r.stdout, r.stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return r.fatal("%s(%d): unable to execute %s: %v", r.sender(), r.uid, path, err)
	}
	return 0
}

// startSystem is -bd: "postfix start" runs in the background, as Postfix's
// sendmail runs it; its messages go to the maillog.
func (r *run) startSystem() int {
	path := filepath.Join(r.cfg.Get("command_directory"), "postfix")
	args := []string{"-c", r.cfg.Dir()}
	for range r.o.Verbose {
		args = append(args, "-v")
	}
	cmd := exec.Command(path, append(args, "start")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return r.fatal("%s(%d): unable to execute %s: %v", r.sender(), r.uid, path, err)
	}
	_ = cmd.Process.Release()
	return 0
}

func (r *run) deliver(stdin io.Reader) int {
	m, err := newMessage(stdin, r.o.IgnoreDots)
	if err != nil {
		return r.fatal("%s(%d): error reading input: %v", r.sender(), r.uid, err)
	}
	rcpts := r.o.Recipients
	if r.o.Extract {
		rcpts = append(rcpts, m.rcpts...)
		if len(rcpts) == 0 {
			return r.fatal("%s(%d): No recipient addresses found in message header", r.sender(), r.uid)
		}
	} else if len(rcpts) == 0 {
		return r.fatal("%s(%d): Recipient addresses must be specified on the command line or via the -t option", r.sender(), r.uid)
	}
	env := &postdrop.Envelope{Sender: r.sender(), FullName: r.fullName(), Recipients: rcpts, Extracted: r.o.Extract, UID: r.uid}
	if _, err := r.drop(env, m); err != nil {
		if errors.Is(err, postdrop.ErrTooBig) {
			return r.fatal("%s(%d): message file too big", r.sender(), r.uid)
		}
		return r.fatal("%s(%d): %v", r.sender(), r.uid, err)
	}
	return 0
}

// drop queues the message: directly as root, else through the set-gid
// postdrop command.
func (r *run) drop(env *postdrop.Envelope, content io.Reader) (string, error) {
	if os.Geteuid() == 0 {
		q := queue.New(r.cfg.Get("queue_directory"))
		return postdrop.Drop(q, env, content, r.cfg.Size("message_size_limit"))
	}
	path := filepath.Join(r.cfg.Get("command_directory"), "postdrop")
	args := []string{"-c", r.cfg.Dir(), "-f", env.Sender, "-F", env.FullName}
	if env.Extracted {
		args = append(args, "-t")
	}
	if env.Verify {
		args = append(args, "--verify")
	}
	args = append(append(args, "--"), env.Recipients...)
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stderr = content, r.stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() == postdrop.ExitTooBig {
			return "", postdrop.ErrTooBig
		}
		r.logger().Warning("command \"%s\" exited with status %d", path, ee.ExitCode())
		return "", fmt.Errorf("unable to execute %s: Application error", path)
	}
	if err != nil {
		return "", fmt.Errorf("unable to execute %s: %v", path, err)
	}
	return "", nil
}
