package local

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"postdove/pkg/postconf"
)

// Settings are the main.cf parameters local(8) obeys, already $-expanded
// (except those expanded per recipient).
type Settings struct {
	MyHostname          string   // myhostname
	MyOrigin            string   // myorigin: domain for unqualified alias targets
	MyDestination       []string // mydestination: domains that are local
	RecipientDelimiter  string   // recipient_delimiter (each character is a delimiter)
	AliasMaps           []string // alias_maps
	ForwardPath         []string // forward_path, still holding $home etc.
	MailboxCommandMaps  []string // mailbox_command_maps
	MailboxCommand      string   // mailbox_command
	HomeMailbox         string   // home_mailbox
	MailSpoolDirectory  string   // mail_spool_directory
	DefaultPrivs        string   // default_privs
	DefaultUID          int      // default_privs' user ID (never 0)
	DefaultGID          int      // default_privs' group ID (never 0)
	LuserRelay          string   // luser_relay, still holding $user etc.
	MailboxTransport    string   // mailbox_transport: "transport:nexthop"
	FallbackTransport   string   // fallback_transport: "transport:nexthop"
	CommandTimeLimit    time.Duration
	AllowMailToCommands []string // alias, forward, include
	AllowMailToFiles    []string // alias, forward, include
	DeliveredHeader     []string // prepend_delivered_header: command, file, forward
	OwnerRequestSpecial bool     // owner_request_special
	ExpandOwnerAlias    bool     // expand_owner_alias
	LocalCommandShell   string   // local_command_shell
	CommandDirectory    string   // command_execution_directory
	QueueDirectory      string   // queue_directory: commands run there by default
	StrictOwnership     bool     // strict_mailbox_ownership
	CommandFilter       string   // command_expansion_filter ("": every byte censored, as in Postfix)
	ForwardFilter       string   // forward_expansion_filter
	ExecDirFilter       string   // execution_directory_expansion_filter
}

// SettingsFrom reads the local(8) parameters through get, which returns a
// parameter's value in force, expanded (postconf's Config.Get: main.cf's
// value or Postfix's default); nil reads Postfix's defaults. The values
// local(8) expands itself per recipient (forward_path, luser_relay,
// mailbox_command, command_execution_directory) come unexpanded, as
// postconf's Get returns them. default_privs must name an account without
// root privileges: otherwise the error is Postfix's fatal one.
func SettingsFrom(get func(name string) string) (Settings, error) {
	if get == nil {
		get = postconf.Empty(postconf.DefaultConfigDir).Get
	}
	var s Settings
	s.MyHostname = get("myhostname")
	s.MyOrigin = get("myorigin")
	if s.MyOrigin == "" {
		s.MyOrigin = s.MyHostname
	}
	s.MyDestination = postconf.SplitList(get("mydestination"))
	s.RecipientDelimiter = get("recipient_delimiter")
	for _, m := range postconf.SplitList(get("alias_maps")) {
		if !strings.HasPrefix(m, "nis:") {
			s.AliasMaps = append(s.AliasMaps, m)
		}
	}
	s.ForwardPath = postconf.SplitList(get("forward_path"))
	s.MailboxCommandMaps = postconf.SplitList(get("mailbox_command_maps"))
	s.MailboxCommand = get("mailbox_command")
	s.HomeMailbox = get("home_mailbox")
	s.MailSpoolDirectory = get("mail_spool_directory")
	s.DefaultPrivs = get("default_privs")
	var err error
	if s.DefaultUID, s.DefaultGID, err = DefaultPrivs(get); err != nil {
		return s, err
	}
	s.LuserRelay = get("luser_relay")
	s.MailboxTransport = strings.TrimSpace(get("mailbox_transport"))
	s.FallbackTransport = strings.TrimSpace(get("fallback_transport"))
	d, err := postconf.ParseDuration(get("command_time_limit"), 's')
	if err != nil {
		return s, fmt.Errorf("bad time value: command_time_limit = %s", get("command_time_limit"))
	}
	s.CommandTimeLimit = d
	s.AllowMailToCommands = postconf.SplitList(get("allow_mail_to_commands"))
	s.AllowMailToFiles = postconf.SplitList(get("allow_mail_to_files"))
	s.DeliveredHeader = postconf.SplitList(get("prepend_delivered_header"))
	for _, b := range []struct {
		name string
		p    *bool
	}{{"owner_request_special", &s.OwnerRequestSpecial}, {"expand_owner_alias", &s.ExpandOwnerAlias}, {"strict_mailbox_ownership", &s.StrictOwnership}} {
		v, err := parseBool(get(b.name))
		if err != nil {
			return s, fmt.Errorf("bad boolean configuration: %s = %s", b.name, get(b.name))
		}
		*b.p = v
	}
	s.LocalCommandShell = get("local_command_shell")
	s.CommandDirectory = get("command_execution_directory")
	s.QueueDirectory = get("queue_directory")
	s.CommandFilter = get("command_expansion_filter")
	s.ForwardFilter = get("forward_expansion_filter")
	s.ExecDirFilter = get("execution_directory_expansion_filter")
	return s, nil
}

// DefaultPrivs resolves default_privs through get (postconf's
// Config.Get): its user and group ID, or Postfix's fatal error naming
// main.cf when the account is unknown or has root's user or group ID.
func DefaultPrivs(get func(name string) string) (uid, gid int, err error) {
	name := get("default_privs")
	mainCF := filepath.Join(get("config_directory"), "main.cf")
	u, err := LookupPasswd(passwdFile, name)
	switch {
	case err != nil:
		return 0, 0, fmt.Errorf("file %s: parameter default_privs: %v", mainCF, err)
	case u == nil:
		return 0, 0, fmt.Errorf("file %s: parameter default_privs: unknown user name value: %s", mainCF, name)
	case u.Uid == 0:
		return 0, 0, fmt.Errorf("file %s: parameter default_privs: user %s has privileged user ID", mainCF, name)
	case u.Gid == 0:
		return 0, 0, fmt.Errorf("file %s: parameter default_privs: user %s has privileged group ID", mainCF, name)
	}
	return u.Uid, u.Gid, nil
}

// passwdFile is where DefaultPrivs looks up default_privs.
const passwdFile = "/etc/passwd"

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("bad boolean %q", v)
}
