// Package local is postdove's local delivery agent, the replacement for
// Postfix's local(8): it delivers one queued message to recipients in the
// local domains, through alias_maps (with :include:, |command, /file and
// owner-NAME lists), ~/.forward (forward_path), mailbox_command_maps,
// mailbox_command, home_mailbox (mbox or Maildir/) and mail_spool_directory,
// and reports one Result per final delivery, logged in Postfix's format.
//
// The agent runs as root. Everything done on behalf of a user (mailbox
// writes, commands, files, reading ~/.forward) happens in a worker process
// started with that user's uid and gid: the daemon's main must call
// MaybeRunWorker first thing, so that the binary re-executed as a worker
// runs the worker loop instead of the daemon. Workers are kept per uid/gid
// and reused for a few seconds; the agent reads the queue file and streams
// the message to them over a pipe.
//
// As in Postfix, forward_path, luser_relay and command_execution_directory
// are expanded per recipient ($user, $home, $extension ...) with postconf's
// expander; what an address brings into forward_path and the command
// directory is censored by forward_expansion_filter and
// execution_directory_expansion_filter, and the environment of every
// command (SENDER, RECIPIENT, EXTENSION ...) by command_expansion_filter,
// so nothing in an address ever reaches a shell. Each recipient is
// delivered as one request (local_destination_recipient_limit = 1).
//
// Typical use by the queue manager:
//
//	s, err := local.SettingsFrom(cfg.Get)  // cfg is the loaded main.cf
//	a := &local.Agent{Settings: s, Logf: logger.Info, Resubmit: cleanup.Submit}
//	results := a.Deliver(local.Request{...})
//	status := local.Overall(results, recipientIndex)
package local
