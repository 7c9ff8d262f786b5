// Package qmgr is postdove's queue manager, the replacement for Postfix's
// qmgr(8): it moves mail from the incoming queue into the active queue,
// hands each message's recipients to the transport their address resolves
// to (local(8) for now), marks each recipient done in the queue file, sends
// non-delivery notifications (bounce(8)), and moves messages with deferred
// recipients to the deferred queue with a retry time between
// minimal_backoff_time and maximal_backoff_time, until
// maximal_queue_lifetime returns them to the sender. It logs Postfix's
// "from=<...>, size=N, nrcpt=N (queue active)" and "removed" lines.
//
// As in Postfix, a bounced recipient is first written to the message's
// bounce logfile and only then marked done; the notification is made from
// that logfile, which is removed once the notification is queued, so a
// notification that cannot be queued is retried with the message. A
// message sendmail -bv submitted (queue.TraceVerify) is not delivered: its
// transports report what they would do, the results go to the trace
// logfile, and the sender gets a delivery status report made from it. A
// recipient a transport returns no result for is deferred ("unknown mail
// transport error"), and a queue file the manager cannot handle is moved
// to the corrupt queue.
package qmgr
