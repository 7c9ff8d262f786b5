// Package delivery is the contract between the queue manager and the
// delivery agents (local, smtp, lmtp, error, discard): a Request names a
// queued message, some of its recipients (with their original addresses
// and DSN parameters), the transport and the next hop; the agent returns
// one or more Results per recipient, with one Status and DSN code for the
// whole code base.
//
// The queue manager reaches an agent through its private/<service>
// socket with a Client, one connection per request; the agent answers on
// the socket the master bound for it with a Server, which reads the
// message from the active queue and hands the complete Request to its
// Handler:
//
//	srv := &delivery.Server{Queue: q, Service: "private/discard", Handler: h}
//	err := srv.Serve(ctx, ln)
//
//	c := delivery.NewClient(q.Dir, "discard")
//	results, err := c.Deliver(ctx, req)
package delivery
