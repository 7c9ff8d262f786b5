package master

import (
	"os"
	"strings"

	"postdove/pkg/addr"
	"postdove/pkg/delivery"
	"postdove/pkg/queue"
	"postdove/pkg/smtp"
)

// runSMTP is smtp(8) or lmtp(8) (role) for one master.cf entry (smtp,
// relay, lmtp ...): it logs under the entry's name, as Postfix's
// postfix/relay[PID], and serves qmgr's requests on private/<name>.
func runSMTP(dir, role string) error {
	name, _, _ := strings.Cut(os.Getenv(envService), "/")
	if name == "" {
		name = role
	}
	d, cancel, err := newDaemon(dir, name)
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
	ln, err := inheritedListener(queue.Private + "/" + name)
	if err != nil {
		return err
	}
	srv := &delivery.Server{Queue: d.q, Service: queue.Private + "/" + name, Handler: c.Handle, Warnf: d.log.Warning}
	return srv.Serve(d.ctx, ln)
}
