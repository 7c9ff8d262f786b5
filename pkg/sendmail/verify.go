package sendmail

import (
	"errors"
	"fmt"
	"strings"

	"postdove/pkg/postdrop"
)

// verify is sendmail -bv: it queues a probe for the recipients, which the
// mail system reports on instead of delivering it: the sender gets a
// "Mail Delivery Status Report". The input is not read.
func (r *run) verify() int {
	if r.o.Extract {
		return r.fatal("-t option cannot be used with -bv")
	}
	rcpts := r.o.Recipients
	if len(rcpts) == 0 {
		return r.fatal("%s(%d): Recipient addresses must be specified on the command line or via the -t option", r.sender(), r.uid)
	}
	probe := fmt.Sprintf("From: %s\nSubject: probe\nTo: %s\n\n", r.sender(), strings.Join(rcpts, ", "))
	env := &postdrop.Envelope{Sender: r.sender(), FullName: r.fullName(), Recipients: rcpts, UID: r.uid, Verify: true}
	if _, err := r.drop(env, strings.NewReader(probe)); err != nil {
		if errors.Is(err, postdrop.ErrTooBig) {
			return r.fatal("%s(%d): message file too big", r.sender(), r.uid)
		}
		return r.fatal("%s(%d): %v", r.sender(), r.uid, err)
	}
	fmt.Fprintf(r.stdout, "Mail Delivery Status Report will be mailed to <%s>.\n", r.sender())
	return 0
}
