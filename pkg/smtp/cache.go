package smtp

import (
	"fmt"
	"sync"
	"time"
)

// connCache keeps idle sessions for reuse, per next-hop destination and
// server address, for smtp_connection_cache_time_limit (Postfix's scache).
type connCache struct {
	mu   sync.Mutex
	idle map[string][]*cached
}

type cached struct {
	s     *session
	timer *time.Timer
}

func cacheKey(n Nexthop, a Address) string {
	if n.Unix != "" {
		return "unix:" + n.Unix
	}
	return fmt.Sprintf("%s:%d|%s", n.Given, n.Port, a.IP)
}

// get takes an idle session for key, or returns nil.
func (c *connCache) get(key string) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.idle[key]
	for len(list) > 0 {
		e := list[len(list)-1]
		list = list[:len(list)-1]
		c.idle[key] = list
		if e.timer.Stop() {
			return e.s
		}
	}
	return nil
}

// put keeps s for ttl; then it says QUIT.
func (c *connCache) put(key string, s *session, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		c.idle = map[string][]*cached{}
	}
	e := &cached{s: s}
	e.timer = time.AfterFunc(ttl, func() {
		c.mu.Lock()
		list := c.idle[key]
		for i, x := range list {
			if x == e {
				c.idle[key] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		s.quit()
	})
	c.idle[key] = append(c.idle[key], e)
}

// Close ends every cached session.
func (c *Client) Close() {
	c.cache.mu.Lock()
	var all []*session
	for k, list := range c.cache.idle {
		for _, e := range list {
			if e.timer.Stop() {
				all = append(all, e.s)
			}
		}
		delete(c.cache.idle, k)
	}
	c.cache.mu.Unlock()
	for _, s := range all {
		s.quit()
	}
}
