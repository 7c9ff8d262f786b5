// Package cleanup replaces Postfix's cleanup(8) daemon as a library: it
// takes one submitted message (envelope and content), fixes it up and
// writes it durably to the incoming queue. pickup (local submissions),
// smtpd and local (forwarding) call it.
//
// What it does, as cleanup(8) does:
//   - the envelope sender and recipients and the addresses in From:, To:,
//     Cc: ... headers are canonicalized (pkg/addr: append_at_myorigin,
//     append_dot_mydomain) and mapped through sender_canonical_maps,
//     recipient_canonical_maps and canonical_maps; an address header
//     keeps at most header_address_token_limit tokens, and one that
//     changes is written in Postfix's layout (addr.FoldHeader);
//   - recipients are expanded through virtual_alias_maps (user@domain,
//     then user for local domains, then the @domain catch-all; recursively,
//     with virtual_alias_recursion_limit and virtual_alias_expansion_limit
//     per original recipient, beyond which the message is deferred, a
//     *Defer; an address that maps to itself is kept), and duplicates
//     dropped;
//   - missing Date:, Message-Id: and From: headers are added, a Received:
//     header is prepended for local submissions, Bcc: is removed when the
//     recipients were extracted from the headers (sendmail -t);
//   - Received: headers, the one prepended here included, are counted
//     against hopcount_limit and the
//     message size against message_size_limit; a header keeps at most
//     header_size_limit bytes, the excess is discarded as Postfix does
//     (headers are read in time linear in their size);
//   - it logs "ID: message-id=<...>".
//
// API:
//
//	c, err := cleanup.New(cfg, q, logger)  // cfg is *postconf.Config
//	id, err := c.Process(&cleanup.Submission{Sender: "root", Recipients: rcpts, UID: 0}, content)
//
// A *Reject error means the message was refused (nothing was queued); its
// Code and Text are what smtpd answers and what sendmail prints.
package cleanup
