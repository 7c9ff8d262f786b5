// Package qmgr is postdove's queue manager, the replacement for Postfix's
// qmgr(8): it moves mail from the incoming queue into the active queue,
// hands each message's recipients to the transport and next hop their
// address resolves to (trivial-rewrite(8): addr.Router) over the delivery
// contract (package delivery), marks each recipient done in the queue file, sends
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
//
// Like Postfix's, it keeps one queue per destination (transport, next hop):
// recipients at a destination share a delivery request up to
// <transport>_destination_recipient_limit; at most a window of requests
// run at once per destination, from initial_destination_concurrency up to
// <transport>_destination_concurrency_limit as deliveries succeed, down on
// failures the agent reports as the destination's (Result.Dead); a
// window's worth of them in a row suspends the destination for
// minimal_backoff_time, its mail deferred without a try ("delivery
// temporarily suspended: REASON"). A transport nobody serves defers its
// mail ("mail transport unavailable"). The main loop never waits for a
// delivery: each runs in a goroutine and reports on a channel, so a
// destination that stalls holds up nothing else, and a stop waits at most
// StopGrace for deliveries under way.
package qmgr
