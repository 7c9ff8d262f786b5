// Package addr is postdove's address rewriting and resolving, the work of
// Postfix's trivial-rewrite(8) daemon: the "canonicalize" step that turns
// "root" into "root@$myorigin" and "user@host" into "user@host.$mydomain"
// (append_at_myorigin, append_dot_mydomain, swap_bangpath,
// allow_percent_hack), and the "resolve" step that decides which address
// class a domain belongs to (local, virtual_alias, virtual, relay or
// default, see ADDRESS_CLASS_README) and where it goes next.
//
// It also parses the address lists of To:, Cc: and similar headers
// (Postfix's tok822 parser) for sendmail -t and cleanup.
//
// API:
//
//	rw := addr.NewRewriter(cfg)          // cfg is a *postconf.Config
//	rw.Canonicalize("root")              // "root@example.com"
//	rs := addr.NewResolver(cfg)
//	class, nexthop := rs.Resolve("bob@example.com")
//	addrs := addr.ParseList(`"A B" <a@b>, c`)   // ["a@b", "c"]
package addr
