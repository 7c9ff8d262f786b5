package queue

import (
	"errors"
	"os"
	"postdove/pkg/syserr"
	"syscall"

	"postdove/pkg/postconf"
)

// FromConfig returns the queue main.cf describes: queue_directory,
// enable_long_queue_ids, hash_queue_depth, hash_queue_names and
// line_length_limit.
func FromConfig(c *postconf.Config) *Queue {
	q := New(c.Get("queue_directory"))
	q.LongIDs = c.Bool("enable_long_queue_ids")
	q.HashDepth = c.Int("hash_queue_depth")
	q.SetHashNames(c.Get("hash_queue_names"))
	q.LineLimit = c.Int("line_length_limit")
	return q
}

// Check verifies that the queue directory exists, with Postfix's message
// when it does not ("chdir /var/spool/postfix: No such file or
// directory").
func (q *Queue) Check() error {
	fi, err := os.Stat(q.Dir)
	if err == nil && !fi.IsDir() {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return errors.New("chdir " + q.Dir + ": " + syserr.Text(err))
	}
	return nil
}
