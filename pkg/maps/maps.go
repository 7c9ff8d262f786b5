// Package maps implements Postfix lookup tables (see postfix's DATABASE_README,
// access(5), cidr_table(5), regexp_table(5), pcre_table(5)): one package used
// by every daemon and every tool (postmap, postalias, postfix check, smtpd,
// cleanup, local).
//
// A table is named "type:name" as in main.cf, e.g. "hash:/etc/postfix/access",
// "cidr:/etc/postfix/client_access", "inline:{a=b, c=d}", "static:OK",
// "unix:passwd.byname", "proxy:hash:/etc/aliases".
//
// Indexed tables are written in postdove's own format (indexfile.go); the
// Berkeley DB hash and btree files Postfix built are read as they are
// (bdb.go). Daemons look tables up through a Cache, which opens a table
// again when its file changes and reports a table that cannot be opened
// as an error, never as "not found".
package maps

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Table is an opened lookup table.
type Table interface {
	// Lookup returns the value for key. found is false when the key is not in
	// the table; err is set only for a failure to consult the table.
	Lookup(key string) (value string, found bool, err error)
	Close() error
}

// Options control how a table is opened.
type Options struct {
	// FoldCase lower-cases lookup keys (Postfix's default for indexed tables
	// and for postmap -q unless -f is given).
	FoldCase bool
	// Warn receives non-fatal diagnostics (e.g. "database X is older than
	// source file Y"); nil discards them. The text carries no program prefix.
	Warn func(msg string)
}

// Opener opens a table of one type; name is the part after "type:".
type Opener func(name string, opts Options) (Table, error)

var (
	regMu   sync.RWMutex
	openers = map[string]Opener{}
)

// Register makes a table type available to Open. Each type's file calls it
// from init.
func Register(typ string, open Opener) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := openers[typ]; dup {
		panic("maps: type registered twice: " + typ)
	}
	openers[typ] = open
}

// Types lists the registered table types, sorted (postconf -m).
func Types() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var t []string
	for k := range openers {
		t = append(t, k)
	}
	sort.Strings(t)
	return t
}

// ErrUnsupported is returned for a type nobody registered.
var ErrUnsupported = errors.New("unsupported dictionary type")

// SplitSpec splits "type:name". A spec without a colon uses defaultType
// (Postfix's default_database_type, "hash").
func SplitSpec(spec, defaultType string) (typ, name string) {
	if i := strings.IndexByte(spec, ':'); i > 0 && !strings.HasPrefix(spec, "/") {
		return spec[:i], spec[i+1:]
	}
	return defaultType, spec
}

// Open opens the table named by spec ("type:name").
func Open(spec string, opts Options) (Table, error) {
	typ, name := SplitSpec(spec, "hash")
	regMu.RLock()
	open, ok := openers[typ]
	regMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, typ)
	}
	return open(name, opts)
}
