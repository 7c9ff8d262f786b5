// Package pickup moves locally submitted mail from the maildrop queue
// through cleanup into the incoming queue, as Postfix's pickup(8) daemon
// does. For each maildrop file it logs
//
//	postfix/pickup[PID]: ID: uid=0 from=<root>
//
// (ID is the new incoming queue ID), and removes the maildrop file only
// after cleanup has made the incoming file durable. A maildrop file that
// cannot be read as a queue file is moved to the corrupt queue with a
// warning; a message cleanup rejects (too big) is removed
// with a warning; the other files keep flowing.
//
// API:
//
//	p := &pickup.Pickup{Queue: q, Cleanup: c, Log: logger}
//	n, err := p.Scan()                 // one pass over maildrop/
//	err = p.Run(ctx, time.Minute)      // scan on public/pickup triggers and every interval
package pickup
