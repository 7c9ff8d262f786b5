// Package master is postdove's master(8): the root process `postfix start`
// leaves running. It creates the queue (postfix set-permissions), writes
// queue_directory/pid/master.pid, and keeps the mail system's daemons
// running, each a re-execution of the postfix binary in a role:
//
//   - pickup (as mail_owner): maildrop -> cleanup -> incoming (pickup(8), cleanup(8))
//   - qmgr (as mail_owner): incoming -> active -> delivery, deferral, bounces (qmgr(8), bounce(8))
//   - local (as root, like Postfix's): serves qmgr on private/local and
//     delivers as each recipient's uid (local(8))
//   - error and retry (error(8)), discard (discard(8)): serve qmgr on
//     private/<service> (as mail_owner)
//
// Every delivery agent serves its master.cf service's private/<name>
// socket with the delivery contract (package delivery); qmgr reaches every
// master.cf unix service there.
//
// Like Postfix's master, it binds the daemons' sockets (public/showq,
// public/flush, private/<agent>) before it starts them and reports the
// system up, and keeps them across daemon restarts. Only pickup and qmgr
// run all the time: the process of a delivery agent, of showq and flush,
// and of a server (smtpd) starts when the first client connects to one of
// its sockets (the client waits in the socket's queue meanwhile), and
// exits after max_idle without a client; the next client starts another. Every daemon inherits
// a status pipe from it and exits, once its work under way is done, when
// that pipe breaks: a master that dies takes its daemons with it. They
// also inherit the locked pid file, so a new master waits until the last
// of them has gone before it starts its own. Nothing else the master
// inherited reaches a daemon.
//
// The servers of master.cf's inet services (smtpd, registered with
// RegisterServer by the package that implements them) get their
// listening sockets the same way: the master binds each service's
// addresses as root, per its host:port name or inet_interfaces and
// inet_protocols, and one daemon per service, as mail_owner with the
// service's -o settings, serves at most its process limit of sessions at
// a time on them (listen.go).
//
// SIGHUP (postfix reload) restarts them with a fresh main.cf; a server
// gets SIGHUP instead, closes its copy of the listeners and exits when its
// sessions are over, while a new one serves new clients on the sockets
// that stay. Sockets no service uses any more are closed, new ones bound.
// SIGTERM (postfix stop) stops them and the master. Queued mail lives on
// disk and is never lost across either.
package master
