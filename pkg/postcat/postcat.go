package postcat

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"postdove/pkg/postconf"
	"postdove/pkg/postqueue"
	"postdove/pkg/queue"
	"postdove/pkg/syserr"
)

// Usage is postcat's usage line, as Postfix's prints it.
const Usage = "usage: postcat [-b (body text)] [-c config_dir] [-d (decimal record type)] [-e (envelope records)] [-h (header text)] [-q (access queue)] [-v] [file(s)...]"

// Options select what Print shows. With none of Envelope, Header and Body
// set, all three are shown.
type Options struct {
	Envelope bool // -e: envelope records and the section markers
	Header   bool // -h: the message header
	Body     bool // -b: the message body
	Offsets  bool // -o: each record's offset in the file
	Decimal  bool // -d: each record's Postfix type number
	Verbose  bool // -v: content lines as Postfix's text records
	// LineLimit is line_length_limit: the longest text record (-v, -o).
	LineLimit int
}

// Postfix's record type letters, for -d.
const (
	recSize     = 'C'
	recTime     = 'T'
	recFullName = 'F'
	recSender   = 'S'
	recAttr     = 'A'
	recOrig     = 'O'
	recORCPT    = 'o'
	recNotify   = 'n'
	recRcpt     = 'R'
	recDone     = 'D'
	recCont     = 'L'
	recNorm     = 'N'
)

// ErrNotQueueFile is a file that is not a queue file at all: postcat
// warns and goes on with the next one.
var ErrNotQueueFile = errors.New("input is not a valid queue file")

// printer writes one file's records.
type printer struct {
	w   *bufio.Writer
	opt Options
}

func (p *printer) record(off int64, typ byte, text string) {
	if p.opt.Offsets {
		fmt.Fprintf(p.w, "%9d ", off)
	}
	if p.opt.Decimal {
		fmt.Fprintf(p.w, "%3d ", typ)
	}
	p.w.WriteString(text)
	p.w.WriteByte('\n')
}

func (p *printer) marker(off int64, what, name string) {
	if p.opt.Offsets && off >= 0 {
		fmt.Fprintf(p.w, "%9d ", off)
	}
	fmt.Fprintf(p.w, "*** %s %s ***\n", what, name)
}

// Print prints queue file f, called name in the section markers, to w.
// An empty file prints nothing. A file that is not a queue file gives
// ErrNotQueueFile; a damaged one a *queue.CorruptError (after the first
// marker, as Postfix's postcat reports it mid-way).
func Print(w io.Writer, f *os.File, name string, opt Options) error {
	if opt.LineLimit <= 0 {
		opt.LineLimit = 2048
	}
	all := !opt.Envelope && !opt.Header && !opt.Body
	if all {
		opt.Envelope, opt.Header, opt.Body = true, true, true
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	p := &printer{w: bw, opt: opt}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil
	}
	m, err := queue.ReadFile(f, name)
	var ce *queue.CorruptError
	if errors.As(err, &ce) && ce.Line == 1 {
		return ErrNotQueueFile
	}
	if opt.Envelope {
		p.marker(-1, "ENVELOPE RECORDS", name)
	}
	if err != nil {
		return err
	}
	if opt.Envelope {
		p.envelope(m, lineOffsets(f, m.Offset))
	}
	if err := p.content(f, m, name); err != nil {
		return err
	}
	if opt.Envelope {
		end := m.Offset + m.Size
		p.marker(end, "HEADER EXTRACTED", name)
		p.marker(end, "MESSAGE FILE END", name)
	}
	return bw.Flush()
}

// envelope prints the envelope in the order Postfix's cleanup writes it.
func (p *printer) envelope(m *queue.Message, off offsets) {
	p.record(off.of("content"), recSize, fmt.Sprintf("message_size: %15d %15d %15d %15d %15d %15d",
		m.MessageSize, m.Offset, len(m.Recipients), 0, m.Size, 0))
	p.record(off.of("arrival"), recTime, "message_arrival_time: "+m.Arrival.Format("Mon Jan _2 15:04:05 2006"))
	names := make([]string, 0, len(m.Attrs))
	for name := range m.Attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == fullNameAttr {
			continue
		}
		p.record(off.of("attr "+name), recAttr, "named_attribute: "+name+"="+m.Attrs[name])
	}
	if v, ok := m.Attrs[fullNameAttr]; ok {
		p.record(off.of("attr "+fullNameAttr), recFullName, "sender_fullname: "+v)
	}
	p.record(off.of("sender"), recSender, "sender: "+m.Sender)
	for i, r := range m.Recipients {
		o := off.of("rcpt " + strconv.Itoa(i))
		if r.ORCPT != "" {
			p.record(o, recORCPT, "dsn_orig_rcpt: "+r.ORCPT)
		}
		if r.Notify != "" {
			p.record(o, recNotify, "dsn_notify_flags: "+strconv.Itoa(notifyFlags(r.Notify)))
		}
		if r.Orig != "" {
			p.record(o, recOrig, "original_recipient: "+r.Orig)
		}
		if r.Status.Done() {
			p.record(o, recDone, "done_recipient: "+r.Address)
		} else {
			p.record(o, recRcpt, "recipient: "+r.Address)
		}
	}
}

// notifyFlags is Postfix's bit mask of an RFC 3461 NOTIFY list: NEVER 1,
// SUCCESS 2, FAILURE 4, DELAY 8.
func notifyFlags(list string) int {
	n := 0
	for _, k := range strings.Split(strings.ToUpper(list), ",") {
		switch strings.TrimSpace(k) {
		case "NEVER":
			n |= 1
		case "SUCCESS":
			n |= 2
		case "FAILURE":
			n |= 4
		case "DELAY":
			n |= 8
		}
	}
	return n
}

// fullNameAttr is the attribute postdrop keeps the sender's full name in.
const fullNameAttr = "full_name"

// content prints the message lines of the selected parts.
func (p *printer) content(f *os.File, m *queue.Message, name string) error {
	if p.opt.Envelope {
		p.marker(m.Offset, "MESSAGE CONTENTS", name)
	}
	if !p.opt.Header && !p.opt.Body {
		return nil
	}
	br := bufio.NewReaderSize(io.NewSectionReader(f, m.Offset, m.Size), 64<<10)
	off := m.Offset
	inHeader, prevHeader := true, false
	for {
		line, err := br.ReadString('\n')
		if line == "" && err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("read %s: %s", name, syserr.Text(err))
		}
		text := strings.TrimSuffix(line, "\n")
		if inHeader {
			cont := prevHeader && text != "" && (text[0] == ' ' || text[0] == '\t')
			prevHeader = cont || isHeader(text)
			inHeader = prevHeader
		}
		if inHeader && p.opt.Header || !inHeader && p.opt.Body {
			p.text(off, text)
		}
		off += int64(len(line))
	}
}

// text prints one content line: whole, or with -v and -o as the records
// Postfix stores it in (unterminated_text pieces of line_length_limit,
// then regular_text).
func (p *printer) text(off int64, line string) {
	if !p.opt.Verbose && !p.opt.Offsets && !p.opt.Decimal {
		p.w.WriteString(line)
		p.w.WriteByte('\n')
		return
	}
	for {
		typ, label, piece := byte(recNorm), "regular_text: ", line
		if len(line) > p.opt.LineLimit {
			typ, label, piece = recCont, "unterminated_text: ", line[:p.opt.LineLimit]
		}
		if !p.opt.Verbose {
			label = ""
		}
		p.record(off, typ, label+piece)
		if typ == recNorm {
			return
		}
		off += int64(len(piece))
		line = line[len(piece):]
	}
}

// isHeader tells whether line starts a header field: a name of printable
// characters other than ':', optional white space, then ':' (RFC 5322
// section 2.2, as Postfix's is_header()).
func isHeader(line string) bool {
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ':':
			return i > 0
		case c == ' ' || c == '\t':
			rest := strings.TrimLeft(line[i:], " \t")
			return i > 0 && strings.HasPrefix(rest, ":")
		case c < 33 || c > 126:
			return false
		}
	}
	return false
}

// offsets maps envelope records ("sender", "attr NAME", "rcpt N") to the
// offset of their line in the file.
type offsets map[string]int64

func (o offsets) of(key string) int64 { return o[key] }

// lineOffsets finds where each envelope line of f starts (for -o).
func lineOffsets(f *os.File, size int64) offsets {
	o := offsets{}
	br := bufio.NewReader(io.NewSectionReader(f, 0, size))
	var pos int64
	rcpt := 0
	for {
		line, err := br.ReadString('\n')
		if line == "" {
			return o
		}
		key, rest, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		switch key {
		case "attr":
			if q, qerr := strconv.QuotedPrefix(rest); qerr == nil {
				if name, uerr := strconv.Unquote(q); uerr == nil {
					key += " " + name
				}
			}
		case "rcpt":
			key += " " + strconv.Itoa(rcpt)
			rcpt++
		}
		if _, dup := o[key]; !dup {
			o[key] = pos
		}
		pos += int64(len(line))
		if err != nil {
			return o
		}
	}
}

// Main runs postcat with args (without the program name) and returns its
// exit status.
func Main(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	fatal := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "postcat: fatal: "+format+"\n", a...)
		return 1
	}
	var opt Options
	fs := pflag.NewFlagSet("postcat", pflag.ContinueOnError)
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	fs.BoolVarP(&opt.Body, "body", "b", false, "")
	configDir := fs.StringP("config", "c", "", "")
	fs.BoolVarP(&opt.Decimal, "decimal", "d", false, "")
	fs.BoolVarP(&opt.Envelope, "envelope", "e", false, "")
	fs.BoolVarP(&opt.Header, "header", "h", false, "")
	fs.BoolVarP(&opt.Offsets, "offsets", "o", false, "")
	byID := fs.BoolP("queue", "q", false, "")
	fs.BoolP("file-order", "r", false, "") // postdove's files have no pointer records
	verbose := fs.CountP("verbose", "v", "")
	if err := fs.Parse(args); err != nil {
		if msg := postqueue.GetoptMessage("postcat", err); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return fatal("%s", Usage)
	}
	opt.Verbose = *verbose > 0
	cfg, err := postconf.Load(postconf.ConfigDir(*configDir))
	if err != nil {
		return fatal("%v", err)
	}
	if n, err := strconv.Atoi(cfg.Get("line_length_limit")); err == nil {
		opt.LineLimit = n
	}
	names := fs.Args()
	if len(names) == 0 {
		if *byID {
			return 0
		}
		f, cleanup, err := seekable(stdin)
		if err != nil {
			return fatal("read stdin: %s", syserr.Text(err))
		}
		defer cleanup()
		return report(Print(stdout, f, "stdin", opt), "stdin", stderr)
	}
	q := queue.FromConfig(cfg)
	for _, name := range names {
		path, label := name, name
		if *byID {
			if !queue.ValidName(name) {
				return fatal("bad mail queue ID: %s", name)
			}
			qname, err := q.Find(name)
			if err != nil {
				return fatal("open queue file %s: %s", name, syserr.Text(syscall.ENOENT))
			}
			path = q.Path(qname, name)
			// Named as Postfix's postcat names it: deferred/7/ID.
			if rel, err := filepath.Rel(cfg.Get("queue_directory"), path); err == nil {
				label = rel
			}
		}
		f, err := os.Open(path)
		if err != nil {
			if *byID {
				return fatal("open queue file %s: %s", name, syserr.Text(err))
			}
			return fatal("open %s: %s", path, syserr.Text(err))
		}
		err = Print(stdout, f, label, opt)
		f.Close()
		if code := report(err, label, stderr); code != 0 {
			return code
		}
	}
	return 0
}

// report words Print's error as Postfix's postcat does and returns the
// exit status so far.
func report(err error, name string, stderr io.Writer) int {
	var ce *queue.CorruptError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNotQueueFile):
		fmt.Fprintf(stderr, "postcat: warning: %s: %v\n", name, err)
		return 0
	case errors.As(err, &ce):
		reason := ce.Reason
		if ce.Line > 0 {
			reason = fmt.Sprintf("line %d: %s", ce.Line, ce.Reason)
		}
		fmt.Fprintf(stderr, "postcat: warning: %s: %s\n", name, reason)
	default:
		fmt.Fprintf(stderr, "postcat: warning: %s: %v\n", name, err)
	}
	fmt.Fprintln(stderr, "postcat: fatal: record read error")
	return 1
}

// seekable returns stdin as a file Print can read at offsets: itself when
// it is a regular file, else a copy in a removed temporary file.
func seekable(stdin *os.File) (*os.File, func(), error) {
	if fi, err := stdin.Stat(); err == nil && fi.Mode().IsRegular() {
		return stdin, func() {}, nil
	}
	tmp, err := os.CreateTemp("", "postcat-")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, stdin); err != nil {
		tmp.Close()
		return nil, nil, err
	}
	return tmp, func() { tmp.Close() }, nil
}
