// Package qmgr is postdove's queue manager, the replacement for Postfix's
// qmgr(8): it moves mail from the incoming queue into the active queue,
// hands each message's recipients to the transport their address resolves
// to (local(8) for now), marks each recipient done in the queue file, sends
// non-delivery notifications (bounce(8)), and moves messages with deferred
// recipients to the deferred queue with a retry time between
// minimal_backoff_time and maximal_backoff_time, until
// maximal_queue_lifetime returns them to the sender. It logs Postfix's
// "from=<...>, size=N, nrcpt=N (queue active)" and "removed" lines.
package qmgr
