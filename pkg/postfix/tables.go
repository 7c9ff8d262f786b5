package postfix

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"postdove/pkg/syserr"
	"strings"

	"postdove/pkg/maps"
	"postdove/pkg/postconf"
)

// indexSuffix is the index file each indexed table type builds from its
// source file (postmap TYPE:FILE writes FILE+suffix).
var indexSuffix = map[string]string{
	"hash":  ".db",
	"btree": ".db",
	"lmdb":  ".lmdb",
	"cdb":   ".cdb",
	"dbm":   ".dir",
	"sdbm":  ".dir",
}

// textTypes are table types read straight from their file, without an index.
var textTypes = map[string]bool{
	"texthash": true,
	"cidr":     true,
	"regexp":   true,
	"pcre":     true,
}

// aliasParams name alias tables, built by postalias/newaliases, not postmap.
var aliasParams = map[string]bool{"alias_maps": true, "alias_database": true}

// ownTables tells whether param names tables the mail system itself
// creates and maintains (caches under data_directory), or only lists tables
// other parameters use (proxy_read_maps, proxy_write_maps): a missing file
// there is no mistake, and Postfix's check says nothing about them.
func ownTables(param string) bool {
	switch param {
	case "address_verify_map", "proxy_read_maps", "proxy_write_maps":
		return true
	}
	return strings.HasSuffix(param, "_cache_database") || strings.HasSuffix(param, "_cache_map") ||
		strings.HasSuffix(param, "_cache_name")
}

// tableRef is one lookup table named in the configuration.
type tableRef struct {
	spec  string // as written after any proxy: prefix, e.g. "hash:/etc/postfix/access"
	typ   string
	name  string
	param string // the main.cf parameter or "master.cf service: -o name" naming it
	alias bool
	// newaliases is set for tables in alias_database, which newaliases rebuilds.
	newaliases bool
}

// tables checks every file-based lookup table main.cf and master.cf name.
func (c *checker) tables() {
	for _, t := range c.tableRefs() {
		c.checkTable(t)
	}
}

// tableRefs collects the lookup tables named in main.cf values (after
// $name expansion) and in master.cf -o overrides, first mention first.
func (c *checker) tableRefs() []tableRef {
	var refs []tableRef
	seen := map[string]bool{}
	aliasDB := map[string]bool{}
	for _, db := range c.cfg.List("alias_database") {
		aliasDB[db] = true
	}
	add := func(param, value string) {
		if ownTables(param) {
			return
		}
		for _, word := range postconf.SplitList(value) {
			for strings.HasPrefix(word, "proxy:") {
				word = strings.TrimPrefix(word, "proxy:")
			}
			i := strings.IndexByte(word, ':')
			if i <= 0 || strings.ContainsAny(word, "{}") {
				continue
			}
			typ, name := maps.SplitSpec(word, "hash")
			_, indexed := indexSuffix[typ]
			if !indexed && !textTypes[typ] || !strings.HasPrefix(name, "/") {
				continue
			}
			if seen[word] {
				continue
			}
			seen[word] = true
			refs = append(refs, tableRef{spec: word, typ: typ, name: name, param: param,
				alias: aliasParams[param], newaliases: aliasDB[word]})
		}
	}
	for _, name := range c.cfg.Names() {
		v, err := c.cfg.GetErr(name)
		if err != nil {
			raw, _ := c.cfg.Raw(name)
			v = raw
		}
		add(name, v)
	}
	for _, s := range c.cfg.Services() {
		for _, o := range s.Options {
			v, err := c.cfg.Expand(o[1])
			if err != nil {
				v = o[1]
			}
			add(o[0], v)
		}
	}
	return refs
}

// rebuild is the command that brings t's index up to date.
func (t tableRef) rebuild() string {
	cmd := "postmap"
	if t.newaliases {
		return "newaliases"
	}
	if t.alias {
		cmd = "postalias"
	}
	if t.typ == "hash" {
		return cmd + " " + t.name
	}
	return cmd + " " + t.spec
}

func (c *checker) checkTable(t tableRef) {
	src, srcErr := os.Stat(t.name)
	if suffix, indexed := indexSuffix[t.typ]; indexed {
		index := t.name + suffix
		idx, idxErr := os.Stat(index)
		switch {
		case idxErr != nil && srcErr != nil:
			c.warnf("%s: table %s does not exist: open %s: %s", t.param, t.spec, t.name, syserr.Text(srcErr))
			return
		case idxErr != nil:
			c.warnf("%s: table %s has no index: open database %s: %s; run \"%s\"", t.param, t.spec, index, syserr.Text(idxErr), t.rebuild())
		case srcErr == nil && src.ModTime().After(idx.ModTime()):
			c.warnf("database %s is older than source file %s; run \"%s\"", index, t.name, t.rebuild())
		}
		if srcErr != nil {
			return
		}
	} else if srcErr != nil {
		c.warnf("%s: table %s does not exist: open %s: %s", t.param, t.spec, t.name, syserr.Text(srcErr))
		return
	}
	if t.typ == "cidr" || t.typ == "regexp" || t.typ == "pcre" {
		return
	}
	if !src.Mode().IsRegular() {
		c.warnf("%s: table %s: %s is not a regular file", t.param, t.spec, t.name)
		return
	}
	c.cidrKeys(t)
}

// cidrKeys warns about keys written as CIDR networks in a table that
// matches exact strings only: such a key is never looked up, so the line
// has no effect.
func (c *checker) cidrKeys(t tableRef) {
	f, err := os.Open(t.name)
	if err != nil {
		c.warnf("%s: table %s: open %s: %s", t.param, t.spec, t.name, syserr.Text(err))
		return
	}
	defer f.Close()
	err = sourceKeys(f, t.alias, func(line int, key string) {
		if _, _, perr := net.ParseCIDR(key); perr != nil {
			return
		}
		hint := ""
		if p := octetPrefix(key); p != "" {
			hint = " or the address prefix \"" + p + "\""
		}
		c.warnf("%s, line %d: %s never matches network %q: %s: tables match exact strings only; use a cidr:%s table%s",
			t.name, line, t.spec, key, t.typ, t.name, hint)
	})
	if err != nil {
		c.warnf("%s: table %s: read %s: %s", t.param, t.spec, t.name, syserr.Text(err))
	}
}

// octetPrefix is the access(5) form of an IPv4 network that ends on an
// octet boundary ("192.168.2.0/24" -> "192.168.2"), or "".
func octetPrefix(cidr string) string {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil || ip.To4() == nil || !ip.Equal(n.IP) {
		return ""
	}
	ones, _ := n.Mask.Size()
	if ones == 0 || ones%8 != 0 || ones == 32 {
		return ""
	}
	return strings.Join(strings.Split(ip.To4().String(), ".")[:ones/8], ".")
}

// maxLine bounds one physical line of a table source file.
const maxLine = 4 << 20

// sourceKeys calls key for the key of each entry of a postmap/postalias
// source file: comment and blank lines are skipped, a line starting with
// white space continues the entry before it, and the key ends at white
// space (and, in an aliases file, at ':'). CR before LF is ignored.
func sourceKeys(r io.Reader, aliases bool, key func(line int, key string)) error {
	stop := " \t"
	if aliases {
		stop += ":"
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		text, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		text = strings.TrimRight(text, "\r\n")
		trimmed := strings.TrimLeft(text, " \t")
		if trimmed == "" || trimmed[0] == '#' || len(trimmed) != len(text) {
			continue
		}
		end := strings.IndexAny(text, stop)
		if end < 0 {
			end = len(text)
		}
		key(n, text[:end])
	}
}

// readLine returns one line, keeping at most maxLine bytes of it.
func readLine(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		if b.Len() < maxLine {
			b.Write(chunk[:min(len(chunk), maxLine-b.Len())])
		}
		switch {
		case err == nil:
			return b.String(), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && b.Len() > 0:
			return b.String(), nil
		default:
			return "", err
		}
	}
}
