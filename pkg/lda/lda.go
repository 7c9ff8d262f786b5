package lda

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"postdove/pkg/doveconf"
	"postdove/pkg/maildir"
	"postdove/pkg/mbox"
	"postdove/pkg/syserr"
)

// Exit codes (sysexits.h), as Dovecot's dovecot-lda uses them.
const (
	ExitOK       = 0
	ExitUsage    = 64 // EX_USAGE
	ExitNoUser   = 67 // EX_NOUSER
	ExitTempFail = 75 // EX_TEMPFAIL
	ExitFatal    = doveconf.ExitFatal
)

const usage = `Usage: dovecot-lda [-c <config file>] [-d <username>] [-p <path>]
                   [-m <mailbox>] [-e] [-k] [-f <envelope sender>]
                   [-a <original envelope recipient>]
                   [-r <final envelope recipient>] 
`

// Options are dovecot-lda's command-line options.
type Options struct {
	Config    string            // -c: dovecot.conf
	User      string            // -d: the destination user (else the invoking uid's)
	Address   string            // -a: the original envelope recipient
	Final     string            // -r: the final envelope recipient
	Sender    string            // -f: the envelope sender
	Mailbox   string            // -m: the mailbox to save to (else INBOX)
	Path      string            // -p: read the message from this file, not stdin
	NoBounce  bool              // -e: report rejections on stderr (nothing here rejects)
	KeepEnv   bool              // -k: keep the environment
	Overrides map[string]string // -o name=value
}

// EnvConfigFile names the environment variable through which Dovecot's
// master tells its programs where dovecot.conf is; -c overrides it.
const EnvConfigFile = "CONFIG_FILE"

// parseArgs reads the options the way getopt(3) does; the second result
// is the complaint to print before the usage text.
func parseArgs(prog string, args []string) (Options, string, bool) {
	o := Options{Config: doveconf.DefaultPath}
	if p := os.Getenv(EnvConfigFile); p != "" {
		o.Config = p
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			// getopt stops at the first word that is not an option;
			// dovecot-lda takes no other arguments.
			return o, "", false
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case 'e':
				o.NoBounce = true
				continue
			case 'k':
				o.KeepEnv = true
				continue
			case 'a', 'c', 'd', 'f', 'm', 'o', 'p', 'r':
			default:
				return o, fmt.Sprintf("%s: invalid option -- '%c'", prog, c), false
			}
			val := a[j+1:]
			if val == "" {
				if i+1 >= len(args) {
					return o, fmt.Sprintf("%s: option requires an argument -- '%c'", prog, c), false
				}
				i++
				val = args[i]
			}
			switch c {
			case 'a':
				o.Address = val
			case 'c':
				o.Config = val
			case 'd':
				o.User = val
			case 'f':
				o.Sender = val
			case 'm':
				o.Mailbox = val
			case 'p':
				o.Path = val
			case 'r':
				o.Final = val
			case 'o':
				k, v, _ := strings.Cut(val, "=")
				if o.Overrides == nil {
					o.Overrides = map[string]string{}
				}
				o.Overrides[k] = v
			}
			break
		}
	}
	return o, "", true
}

// Main runs dovecot-lda with args (args[0] is the program's name), the
// message on stdin, and returns its exit code. The usage text goes to
// stdout, as Dovecot prints it.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, complaint, ok := parseArgs(args[0], args[1:])
	if !ok {
		if complaint != "" {
			fmt.Fprintln(stderr, complaint)
		}
		io.WriteString(stdout, usage)
		return ExitUsage
	}
	return Run(o, stdin, stderr)
}

// Run delivers the message read from stdin (or o.Path) as o says.
func Run(o Options, stdin io.Reader, stderr io.Writer) int {
	fatal := func(prog, msg string, code int) int {
		fmt.Fprintf(stderr, "%s: Fatal: %s\n", prog, msg)
		return code
	}
	data, err := os.ReadFile(o.Config)
	if err != nil {
		return fatal("doveconf", fmt.Sprintf("open(%s) failed: %s", o.Config, syserr.Text(err)), ExitFatal)
	}
	cfg, err := doveconf.Parse(o.Config, data)
	if err != nil {
		return fatal("doveconf", err.Error(), ExitFatal)
	}
	set := cfg.For(doveconf.Match{Protocol: "lda"})
	get := o.getter(set)
	pid := os.Getpid()
	// An empty postmaster_address is postmaster@ the host name, which must
	// then have a domain. Dovecot 2.2 (CentOS 7, the lab's) has no default
	// either, so there an unset one is empty too: the lab's
	// troubleshooting note is about exactly this.
	_, pmSet := set.Value("postmaster_address")
	if _, ok := o.Overrides["postmaster_address"]; ok {
		pmSet = true
	}
	if (!pmSet || get("postmaster_address") == "") && !strings.Contains(set.Hostname(), ".") {
		return fatal("lda("+strconv.Itoa(pid)+")", "Error reading configuration: Invalid settings: postmaster_address setting not given", ExitTempFail)
	}

	name, home, code := o.user(get, stderr)
	if code != ExitOK {
		return code
	}
	log, err := newLogger(get, fmt.Sprintf("lda(%s)<%d><%s>: ", name, pid, sessionID()))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitTempFail
	}
	defer log.Close()

	if home != "" {
		if err := os.Chdir(home); errors.Is(err, syscall.EACCES) {
			log.Error("%s", eaccesError("chdir", home+"/", false))
		}
	}
	var src io.Reader = stdin
	if o.Path != "" {
		f, err := os.Open(o.Path)
		if err != nil {
			return fatal("lda("+name+")", fmt.Sprintf("open(%s) failed: %s", o.Path, syserr.Text(err)), ExitTempFail)
		}
		defer f.Close()
		src = f
	}
	msg := newMessage(src)
	d := &delivery{opts: o, get: get, log: log, msg: msg, user: name, home: home, lockTimeout: set.Duration("mbox_lock_timeout")}
	return d.run()
}

// getter returns the settings of set with -o's overrides.
func (o Options) getter(set *doveconf.Settings) func(string) string {
	return func(name string) string {
		if v, ok := o.Overrides[name]; ok {
			return v
		}
		return set.Get(name)
	}
}

// SettingNames are the settings Deliver reads.
var SettingNames = []string{"mail_location", "lda_mailbox_autocreate", "lda_mailbox_autosubscribe", "mbox_write_locks", "mbox_lock_timeout"}

// Deliver saves msg for user (whose home is home) as dovecot-lda does
// once it knows the user, in the calling process, which must already run
// as that user: into o.Mailbox (else INBOX) where mail_location says, the
// envelope sender o.Sender. Dovecot's LMTP server delivers this way. The
// log lines go to logf with their level ("Info", "Error", "Fatal")
// instead of to the log. It returns the exit code dovecot-lda would
// (ExitOK, ExitTempFail) and for a failure the reason as Dovecot words it.
func Deliver(user, home string, o Options, set *doveconf.Settings, msg io.Reader, logf func(level, text string)) (int, string) {
	d := &delivery{opts: o, get: o.getter(set), log: &logger{emit: logf}, msg: newMessage(msg), user: user, home: home,
		lockTimeout: set.Duration("mbox_lock_timeout")}
	code := d.run()
	return code, d.reason
}

// user works out whose mail this is: -d's user, looked up in the
// password file (the process then takes that user's uid and gid when it
// is root), else $USER or the invoking uid's user, with $HOME as the
// home.
func (o Options) user(get func(string) string, stderr io.Writer) (name, home string, code int) {
	euid := os.Geteuid()
	if o.User == "" {
		if euid == 0 {
			fmt.Fprintln(stderr, "lda: Fatal: destination user parameter (-d user) not given")
			return "", "", ExitUsage
		}
		u, err := user.LookupId(strconv.Itoa(euid))
		if err != nil {
			fmt.Fprintf(stderr, "lda: Fatal: Couldn't lookup our username (uid=%d)\n", euid)
			return "", "", ExitUsage
		}
		// As Dovecot's: $USER (Postfix's local sets it to the
		// recipient, "root" when default_privs runs the command) names
		// the user, $HOME the home.
		name = os.Getenv("USER")
		if name == "" {
			name = u.Username
		}
		home = os.Getenv("HOME")
		if home == "" {
			home = u.HomeDir
		}
		return name, home, ExitOK
	}
	u, err := user.Lookup(o.User)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return "", "", ExitNoUser
		}
		fmt.Fprintf(stderr, "lda(%s): Error: user %s: userdb lookup failed: %v\n", o.User, o.User, err)
		return "", "", ExitTempFail
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	first, _ := strconv.Atoi(get("first_valid_uid"))
	last, _ := strconv.Atoi(get("last_valid_uid"))
	if uid < first || (last != 0 && uid > last) {
		fmt.Fprintf(stderr, "lda(%s): Error: user %s: Mail access for users with UID %d not permitted (see first_valid_uid in config file, uid from userdb lookup).\n", o.User, o.User, uid)
		return "", "", ExitTempFail
	}
	if uid != euid {
		if err := switchUser(uid, gid); err != nil {
			fmt.Fprintf(stderr, "lda(%s): Fatal: setuid(%d) failed with euid=%s: %s\n", o.User, uid, uidName(euid), syserr.Text(err))
			return "", "", ExitTempFail
		}
	}
	return u.Username, u.HomeDir, ExitOK
}

// switchUser makes the process run as uid and gid (and no other group).
func switchUser(uid, gid int) error {
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return err
	}
	if err := syscall.Setgid(gid); err != nil {
		return err
	}
	return syscall.Setuid(uid)
}

// sessionID is a fresh Dovecot session id: 16 random bytes in base64
// without padding.
func sessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.TrimRight(base64.StdEncoding.EncodeToString(b[:]), "=")
}

// delivery is one run's state.
type delivery struct {
	opts       Options
	get        func(string) string
	log        *logger
	msg        *message
	user, home string
	// lockTimeout is mbox_lock_timeout.
	lockTimeout time.Duration
	// reason is why the save failed, as the client is told.
	reason string
}

// saveError is a failed save: text is what the Info line says after
// "save failed to ...", temp whether trying later may succeed.
type saveError struct {
	text string
	temp bool
}

func (d *delivery) run() int {
	ml := doveconf.ParseMailLocation(d.get("mail_location"))
	ml = ml.Expand(doveconf.Vars{User: d.user, Home: d.home})
	if ml.Format == "" && ml.Root == "" {
		var ok bool
		if ml, ok = d.autodetect(); !ok {
			d.log.Fatal("mail_location not set and autodetection failed: Mail storage autodetection failed with home=%s", d.home)
			return ExitTempFail
		}
	} else if ml.Format == "" {
		ml.Format = "maildir"
	}
	box := d.opts.Mailbox
	if box == "" {
		box = "INBOX"
	}
	err := d.save(ml, box)
	if err != nil && !strings.EqualFold(box, "INBOX") {
		box = "INBOX"
		err = d.save(ml, box)
	}
	if err != nil {
		// Nothing here rejects a message for good: a failed save is
		// always one to try again.
		d.reason = err.text
		return ExitTempFail
	}
	d.log.Info("msgid=%s: saved mail to %s", d.msg.ID(), box)
	return ExitOK
}

// autodetect finds the mail as Dovecot does when mail_location is empty:
// ~/Maildir (with its cur/), else an mbox INBOX in the spool with ~/mail (or ~/Mail); ok
// is false when there is neither.
func (d *delivery) autodetect() (ml doveconf.MailLocation, ok bool) {
	isDir := func(p string) bool {
		fi, err := os.Stat(p)
		return err == nil && fi.IsDir()
	}
	if maildir := filepath.Join(d.home, "Maildir"); isDir(filepath.Join(maildir, "cur")) {
		return doveconf.MailLocation{Format: "maildir", Root: maildir}, true
	}
	for _, root := range []string{"mail", "Mail"} {
		root = filepath.Join(d.home, root)
		if !isDir(root) {
			continue
		}
		for _, spool := range []string{"/var/mail", "/var/spool/mail"} {
			if _, err := os.Stat(filepath.Join(spool, d.user)); err == nil {
				return doveconf.MailLocation{Format: "mbox", Root: root, Inbox: filepath.Join(spool, d.user)}, true
			}
		}
		return doveconf.MailLocation{Format: "mbox", Root: root, Inbox: filepath.Join(root, "inbox")}, true
	}
	return ml, false
}

// save saves the message to box, logging why when it cannot.
func (d *delivery) save(ml doveconf.MailLocation, box string) *saveError {
	var err *saveError
	switch ml.Format {
	case "maildir":
		err = d.saveMaildir(ml, box)
	case "mbox":
		err = d.saveMbox(ml, box)
	default:
		d.log.Error("Unknown mail storage driver %s", ml.Format)
		err = &saveError{text: internalError(), temp: true}
		d.log.Info("msgid=%s: save failed to open mailbox %s: %s", d.msg.ID(), box, err.text)
	}
	return err
}

// internalError is what Dovecot tells the client instead of an internal
// error, which goes to the log.
func internalError() string {
	return "Internal error occurred. Refer to server log for more information. [" + time.Now().Format("2006-01-02 15:04:05") + "]"
}

// describe words a failed system call as Dovecot does: op(path) failed:
// reason, with the permissions explained for EACCES.
func describe(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, syscall.EACCES) {
			return eaccesError(pe.Op, pe.Path, pe.Op == "mkdir" || pe.Op == "open")
		}
		return fmt.Sprintf("%s(%s) failed: %s", pe.Op, pe.Path, syserr.Text(pe.Err))
	}
	return syserr.Text(err)
}

// noSpace reports a full disk or quota.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// openFailed logs a mailbox that cannot be opened: the internal error,
// then the Info line, and returns the temporary failure.
func (d *delivery) openFailed(box, reason string, internal bool) *saveError {
	if internal {
		d.log.Error("%s", reason)
	}
	d.log.Info("msgid=%s: save failed to open mailbox %s: %s", d.msg.ID(), box, reason)
	return &saveError{text: reason, temp: true}
}

// saveFailed logs a save that failed after the mailbox was opened, in
// Dovecot's words: the error as the saving code, then the storage, report
// it, and the Info line.
func (d *delivery) saveFailed(box string, err error) *saveError {
	reason := "Mailbox " + box + ": Saving mail: " + describeSave(err)
	d.log.Error("Mailbox %s: Saving mail: save: %s", box, describeSave(err))
	d.log.Error("%s", reason)
	d.log.Error("%s", reason)
	d.log.Info("msgid=%s: save failed to %s: %s", d.msg.ID(), box, reason)
	return &saveError{text: reason, temp: true}
}

// describeSave words a failed Maildir save as "write(path) failed: No
// space left on device", the path being the tmp/ or new/ file.
func describeSave(err error) string {
	var me *maildir.Error
	if errors.As(err, &me) && me.Err != nil {
		op, name, ok := strings.Cut(me.Reason, " ")
		if ok && !strings.Contains(name, " ") {
			path := filepath.Join(me.Dir, name)
			if !strings.Contains(name, "/") {
				path = filepath.Join(me.Dir, "new", name)
			}
			if errors.Is(me.Err, syscall.EACCES) {
				return eaccesError(op, path, op == "create")
			}
			return fmt.Sprintf("%s(%s) failed: %s", op, path, syserr.Text(me.Err))
		}
		return describe(me.Err)
	}
	return describe(err)
}

// prepareRoot makes sure the Maildir root and its INBOX folders exist,
// failing as Dovecot does when they cannot be reached or made.
func (d *delivery) prepareRoot(root, box string) *saveError {
	tmp := filepath.Join(root, "tmp")
	_, err := os.Stat(tmp)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, syscall.ENOENT):
		return d.openFailed(box, describe(err), true)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		// Dovecot names the folder it meant to make, logs it twice
		// (listing, then creating INBOX) and fails the autocreation.
		reason := describe(err)
		var pe *os.PathError
		if errors.As(err, &pe) && errors.Is(pe.Err, syscall.EACCES) {
			reason = eaccesError("mkdir", root, true)
		}
		d.log.Error("%s", reason)
		d.log.Error("%s", reason)
		return d.openFailed(box, "Mailbox INBOX: Failed to autocreate mailbox: "+internalError(), true)
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.Mkdir(filepath.Join(root, sub), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return d.openFailed(box, "Mailbox INBOX: "+describe(err), true)
		}
	}
	return nil
}

func (d *delivery) saveMaildir(ml doveconf.MailLocation, box string) *saveError {
	st := maildir.OpenStore(ml.Root, maildir.Options{UID: -1, GID: -1})
	if strings.EqualFold(box, "INBOX") {
		box = "INBOX"
	}
	if err := d.prepareRoot(ml.Root, box); err != nil {
		return err
	}
	mb, err := st.Mailbox(box)
	if errors.Is(err, maildir.ErrNoMailbox) && d.get("lda_mailbox_autocreate") == "yes" {
		err = st.Create(box)
		if err == nil || errors.Is(err, maildir.ErrExists) {
			if d.get("lda_mailbox_autosubscribe") == "yes" {
				if err := st.Subscribe(box, true); err != nil {
					d.log.Error("Failed to autosubscribe to %s: %s", box, describe(err))
				}
			}
			mb, err = st.Mailbox(box)
		}
	}
	switch {
	case errors.Is(err, maildir.ErrNoMailbox):
		return d.openFailed(box, "Mailbox doesn't exist: "+box, false)
	case errors.Is(err, maildir.ErrBadName):
		return d.openFailed(box, "Invalid mailbox name", false)
	case err != nil:
		return d.openFailed(box, describe(err), true)
	}
	if _, _, err := mb.Deliver(d.msg.Reader(), maildir.DeliverOptions{}); err != nil {
		return d.saveFailed(box, err)
	}
	return nil
}

// saveMbox appends to an mbox: INBOX is the INBOX= file (the spool), any
// other mailbox a file under the mail root. The locks are
// mbox_write_locks (Dovecot's default: fcntl and dotlock).
func (d *delivery) saveMbox(ml doveconf.MailLocation, box string) *saveError {
	path := ml.Inbox
	if strings.EqualFold(box, "INBOX") {
		box = "INBOX"
		if path == "" {
			path = filepath.Join(ml.Root, "inbox")
		}
	} else {
		path = filepath.Join(ml.Root, box)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && d.get("lda_mailbox_autocreate") != "yes" {
			return d.openFailed(box, "Mailbox doesn't exist: "+box, false)
		}
	}
	locks, err := mbox.ParseLocks(d.get("mbox_write_locks"))
	if err != nil {
		locks = mbox.DefaultLocks
	}
	opts := mbox.Options{Locks: &locks, Create: true, UID: -1, GID: -1,
		LockTimeouts: mbox.LockTimeouts{Attempts: int(d.lockTimeout / time.Second), Delay: time.Second}}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return d.openFailed(box, describe(err), true)
	}
	sender := d.opts.Sender
	if sender == "" {
		sender = d.msg.from
	}
	if err := mbox.Deliver(path, sender, time.Now(), d.msg.Reader(), opts); err != nil {
		var me *mbox.Error
		if errors.As(err, &me) && me.Err != nil {
			err = me.Err
		}
		return d.saveFailed(box, err)
	}
	return nil
}
