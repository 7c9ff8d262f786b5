package master

import (
	"postdove/pkg/addr"
	"postdove/pkg/smtp"
)

// runSMTP is smtp(8) or lmtp(8) (role) for one master.cf entry (smtp,
// relay, lmtp ...), serving qmgr's requests on private/<name>. It logs as
// postfix/smtp (or lmtp) whatever the entry's name, as Postfix does; an
// entry's -o syslog_name=postfix/$service_name makes it postfix/relay/smtp.
func runSMTP(dir, role string) error {
	d, cancel, err := newDaemon(dir, role)
	if err != nil {
		return err
	}
	defer cancel()
	settings, err := smtp.SettingsFrom(role, d.cfg.Get)
	if err != nil {
		d.log.Fatal("%v", err)
	}
	rs := addr.NewResolver(d.cfg)
	c := &smtp.Client{
		Settings:      settings,
		IsLocalDomain: rs.IsLocalDomain,
		IsSelf:        smtp.SelfFrom(d.cfg.Get),
		Logf:          d.log.Info,
	}
	defer c.Close()
	return serveAgent(d, "none", c.Handle)
}
