package sendmail

import (
	"context"
	"io"
	"os"
	"strings"

	"postdove/pkg/cleanup"
	"postdove/pkg/maillog"
	"postdove/pkg/postdrop"
	"postdove/pkg/queue"
	"postdove/pkg/smtpd"
)

// smtp is sendmail -bs: the SMTP server's own session (package smtpd) on
// stdin/stdout, run stand-alone as Postfix's sendmail runs smtpd: the
// client is the local user (localhost[127.0.0.1]), the access
// restrictions do not apply, and each message goes to the maildrop
// queue with smtpd's Received: header, for pickup.
func (r *run) smtp(stdin io.Reader) int {
	log := maillog.ForCommand(r.cfg.Get, "smtpd", io.Discard)
	smtpd.StandAlone(r.cfg, dropQueue{r}, log).ServeStdio(context.Background(), stdin, r.stdout)
	return 0
}

// dropQueue queues sendmail -bs's messages in the maildrop queue: as
// root directly, its file opened at the first accepted recipient; else
// through the set-gid postdrop at the end of DATA.
type dropQueue struct{ r *run }

// dropFile is a maildrop file being written.
type dropFile struct{ w *queue.Writer }

func (f dropFile) ID() string { return f.w.ID() }
func (f dropFile) Abort()     { f.w.Abort() }

// noFile stands for the maildrop file postdrop will write.
type noFile struct{}

func (noFile) ID() string { return "" }
func (noFile) Abort()     {}

func (d dropQueue) Open() (smtpd.Pending, error) {
	if os.Geteuid() != 0 {
		return noFile{}, nil
	}
	w, err := postdrop.Open(queue.New(d.r.cfg.Get("queue_directory")))
	if err != nil {
		return nil, err
	}
	return dropFile{w}, nil
}

func (d dropQueue) Queue(p smtpd.Pending, sub *cleanup.Submission, content io.Reader) (string, error) {
	// No full name: as with Postfix, a From: that cleanup adds has the
	// address alone.
	env := &postdrop.Envelope{Sender: sub.Sender, Recipients: sub.Recipients, UID: d.r.uid}
	body := io.MultiReader(strings.NewReader("Received: "+sub.ReceivedFor(p.ID())+"\n"), content)
	if f, ok := p.(dropFile); ok {
		return postdrop.Finish(queue.New(d.r.cfg.Get("queue_directory")), f.w, env, body, d.r.cfg.Size("message_size_limit"))
	}
	return d.r.drop(env, body)
}
