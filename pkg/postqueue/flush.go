package postqueue

import (
	"errors"
	"fmt"
	"io/fs"
	"postdove/pkg/syserr"
	"strconv"
	"strings"
	"time"

	"postdove/pkg/queue"
)

// Fatal is an error postqueue reports as "postqueue: fatal: TEXT" and
// exits 69 (EX_UNAVAILABLE).
type Fatal struct {
	Warning string // printed first as "postqueue: warning: WARNING", if set
	Text    string
}

func (f *Fatal) Error() string { return f.Text }

// textFlushDown is Postfix's message when a flush request finds nobody.
const textFlushDown = "Cannot flush mail queue - mail system is down"

// Flush asks the queue manager to retry all deferred mail now
// (postqueue -f): it writes to the public/qmgr FIFO, which the set-gid
// postdrop group may write to.
func Flush(q *queue.Queue) error {
	if err := q.Check(); err != nil {
		return err
	}
	for _, req := range []byte{queue.QmgrFlushDead, queue.QmgrScanAll} {
		if err := queue.Trigger(q.Dir, "qmgr", req); err != nil {
			if errors.Is(err, queue.ErrDown) {
				f := &Fatal{Text: textFlushDown}
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
					f.Warning = "unable to look up public/qmgr: " + syserr.Text(err)
				}
				return f
			}
			return err
		}
	}
	return nil
}

// FlushID asks the flush service (public/flush) to make deferred message
// id due now and wake the queue manager (postqueue -i).
func FlushID(q *queue.Queue, id string) error {
	if !queue.ValidName(id) {
		return &Fatal{Text: "Cannot flush queue ID - invalid name: " + strconv.Quote(id)}
	}
	return flushRequest(q, flushID+" "+id)
}

// FlushSite asks the flush service (public/flush) to make deferred mail
// for site due now and wake the queue manager (postqueue -s). As in
// Postfix, site must be one of the fast_flush_domains (a domain listed
// there, or a subdomain of a listed ".domain"), given as flushDomains;
// that is checked here and again by the service.
func FlushSite(q *queue.Queue, site string, flushDomains []string) error {
	if !validSite(site) {
		return &Fatal{Text: "Cannot flush mail queue - invalid destination: " + strconv.Quote(site)}
	}
	if !siteListed(site, flushDomains) {
		return notConfigured(site)
	}
	return flushRequest(q, flushSite+" "+site)
}

func notConfigured(site string) *Fatal {
	return &Fatal{Text: fmt.Sprintf("Flush service is not configured for destination %q", site)}
}

// touchID makes deferred message id due now and wakes qmgr: the flush
// service's work for postqueue -i.
func touchID(q *queue.Queue, id string) error {
	if !queue.ValidName(id) {
		return fmt.Errorf("invalid queue ID %q", id)
	}
	if err := q.Check(); err != nil {
		return err
	}
	_ = q.Touch(queue.Deferred, id, time.Now())
	return Flush(q)
}

// touchSite makes deferred mail with a recipient in site due now and
// wakes qmgr: the flush service's work for postqueue -s.
func touchSite(q *queue.Queue, site string) error {
	if err := q.Check(); err != nil {
		return err
	}
	ids, err := q.List(queue.Deferred)
	if err != nil {
		return err
	}
	site = strings.ToLower(strings.TrimSuffix(site, "."))
	now := time.Now()
	for _, id := range ids {
		m, err := q.ReadEnvelope(queue.Deferred, id)
		if err != nil {
			continue
		}
		for _, r := range m.Recipients {
			at := strings.LastIndexByte(r.Address, '@')
			if !r.Status.Done() && at >= 0 && strings.EqualFold(r.Address[at+1:], site) {
				_ = q.Touch(queue.Deferred, id, now)
				break
			}
		}
	}
	return Flush(q)
}

func siteListed(site string, domains []string) bool {
	site = strings.ToLower(strings.TrimSuffix(site, "."))
	for _, d := range domains {
		// parent_domain_matches_subdomains covers fast_flush_domains by
		// default: a domain also matches its subdomains.
		d = strings.TrimPrefix(strings.ToLower(d), ".")
		if d != "" && (d == site || strings.HasSuffix(site, "."+d)) {
			return true
		}
	}
	return false
}
