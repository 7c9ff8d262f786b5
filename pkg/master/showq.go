package master

import (
	"net"

	"postdove/pkg/postqueue"
)

// runShowq is showq(8) and flush(8): it runs as mail_owner, which can read
// the queue, and answers postqueue's listing and flush requests on the
// public/showq and public/flush sockets for users who cannot.
func runShowq(dir string) error {
	d, cancel, err := newDaemon(dir, "showq")
	if err != nil {
		return err
	}
	defer cancel()
	showq, err := inheritedListener(roleSockets["showq"][0])
	if err != nil {
		return err
	}
	flush, err := inheritedListener(roleSockets["showq"][1])
	if err != nil {
		showq.Close()
		return err
	}
	go func() {
		<-d.ctx.Done()
		showq.Close()
		flush.Close()
	}()
	a := &activity{}
	d.exitWhenIdle(a, showq, flush)
	flushLog := d.log.With("flush")
	done := make(chan error, 2)
	go func() { done <- postqueue.ServeShowq(a.listener(showq), d.q, d.log.Warning) }()
	go func() {
		done <- postqueue.ServeFlush(a.listener(flush), d.q, postqueue.FlushDomains(d.cfg), flushLog.Warning)
	}()
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			closeAll(showq, flush)
			return err
		}
	}
	return nil
}

func closeAll(lns ...net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}
