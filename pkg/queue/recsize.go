package queue

// DefaultLineLimit is Postfix's line_length_limit default: longer lines
// are stored as several records.
const DefaultLineLimit = 2048

// RecordSize counts message content the way Postfix's queue file stores
// it, which is the size Postfix reports (qmgr's "size=", mailq's size
// column): each line is a record of one type byte, its length in 7-bit
// groups, and its text without the newline; a line longer than the limit
// is cut into records of limit bytes, and a line that fills its last
// record exactly ends with an empty one. A last line without a newline
// is followed by an empty record as well. Write never fails.
type RecordSize struct {
	limit int
	cur   int   // bytes in the record being read
	total int64 // bytes of the records finished so far
}

// NewRecordSize returns a counter for records of at most limit bytes
// (line_length_limit; DefaultLineLimit when limit <= 0).
func NewRecordSize(limit int) *RecordSize {
	if limit <= 0 {
		limit = DefaultLineLimit
	}
	return &RecordSize{limit: limit}
}

// recordBytes is the stored size of a record holding n bytes of text.
func recordBytes(n int) int64 {
	size := int64(2 + n)
	for n >>= 7; n > 0; n >>= 7 {
		size++
	}
	return size
}

// Write counts p.
func (r *RecordSize) Write(p []byte) (int, error) {
	for _, c := range p {
		if r.cur == r.limit {
			r.total += recordBytes(r.cur)
			r.cur = 0
		}
		if c == '\n' {
			r.total += recordBytes(r.cur)
			r.cur = 0
			continue
		}
		r.cur++
	}
	return len(p), nil
}

// Size returns the size of everything written, with an unfinished last
// line counted as Postfix stores it.
func (r *RecordSize) Size() int64 {
	if r.cur > 0 {
		return r.total + recordBytes(r.cur) + recordBytes(0)
	}
	return r.total
}
