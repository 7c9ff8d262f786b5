// Package postkick is postdove's postkick(1): it sends a request to a mail
// system service (the FIFO or socket queue_directory/CLASS/SERVICE), as
// Postfix's postkick does, e.g. "postkick public pickup W" to wake pickup
// or "postkick public qmgr A" to make the queue manager scan every queue.
// The request letters are the services' own (postdove/pkg/queue's
// trigger requests).
//
// API: Main(args []string, stderr io.Writer) int.
package postkick

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"postdove/pkg/postconf"
	"postdove/pkg/postqueue"
	"postdove/pkg/queue"
	"postdove/pkg/syserr"
)

// Usage is postkick's usage line, as Postfix's prints it.
const Usage = "usage: postkick [-c config_dir] [-v] class service request"

// Main runs postkick with args (without the program name) and returns its
// exit status.
func Main(args []string, stderr io.Writer) int {
	fs := pflag.NewFlagSet("postkick", pflag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false)
	configDir := fs.StringP("config", "c", "", "")
	fs.CountP("verbose", "v", "")
	fatal := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "postkick: fatal: "+format+"\n", a...)
		return 1
	}
	if err := fs.Parse(args); err != nil {
		if msg := postqueue.GetoptMessage("postkick", err); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return fatal("%s", Usage)
	}
	if fs.NArg() != 3 {
		return fatal("%s", Usage)
	}
	class, service, request := fs.Arg(0), fs.Arg(1), fs.Arg(2)
	cfg, err := postconf.Load(postconf.ConfigDir(*configDir))
	if err != nil {
		return fatal("%v", err)
	}
	if err := Kick(cfg.Get("queue_directory"), class, service, request); err != nil {
		fmt.Fprintf(stderr, "postkick: warning: %v\n", err)
		fmt.Fprintf(stderr, "postkick: warning: Cannot contact class %s service %s - perhaps the mail system is down\n", class, service)
		return 1
	}
	return 0
}

// Kick writes request to queueDir/class/service: a public FIFO (pickup,
// qmgr: through queue.Trigger) or a UNIX-domain socket.
func Kick(queueDir, class, service, request string) error {
	rel := class + "/" + service
	path := filepath.Join(queueDir, class, service)
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("unable to look up %s: %s", rel, syserr.Text(err))
	}
	switch {
	case fi.Mode()&os.ModeNamedPipe != 0 && class == queue.Public:
		for i := 0; i < len(request); i++ {
			if err := queue.Trigger(queueDir, service, request[i]); err != nil {
				return fmt.Errorf("%s: %v", rel, err)
			}
		}
		return nil
	case fi.Mode()&os.ModeSocket != 0:
		conn, err := net.DialTimeout("unix", path, 10*time.Second)
		if err != nil {
			return fmt.Errorf("connect to %s: %s", rel, syserr.Text(err))
		}
		defer conn.Close()
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte(request)); err != nil {
			return fmt.Errorf("write %s: %s", rel, syserr.Text(err))
		}
		return nil
	}
	return fmt.Errorf("%s: not a public FIFO or a socket", rel)
}
