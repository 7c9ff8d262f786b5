package lineconv

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCopy(t *testing.T) {
	big := strings.Repeat("a", 64*1024-1)
	for _, tc := range []struct {
		name, in, out string
		opts          Options
		bareLF        int64
	}{
		{"crlf", "Subject: x\r\n\r\nbody\r\n", "Subject: x\n\nbody\n", Options{}, 3},
		{"lf kept", "a\nb\n", "a\nb\n", Options{}, 2},
		{"bare cr kept", "a\rb\r\n", "a\rb\n", Options{}, 1},
		{"double cr", "a\r\r\n", "a\r\n", Options{}, 0},
		{"quote from", "From x\nFrom: y\n From z\n>From w\nFrom \n", ">From x\nFrom: y\n From z\n>From w\n>From \n", Options{QuoteFrom: true}, 5},
		{"no quote", "From x\n", "From x\n", Options{}, 1},
		{"missing newline added", "a\r\nlast", "a\nlast\n", Options{EnsureNewline: true}, 2},
		{"missing newline kept", "a\r\nlast", "a\nlast", Options{}, 1},
		{"trailing cr", "a\r", "a\r\n", Options{EnsureNewline: true}, 0},
		{"empty", "", "", Options{EnsureNewline: true}, 0},
		{"crlf across buffer", big + "\r\nFrom x\r\n", big + "\n>From x\n", Options{QuoteFrom: true}, 2},
		{"long line not quoted mid-line", strings.Repeat("b", 64*1024) + "From x\n", strings.Repeat("b", 64*1024) + "From x\n", Options{QuoteFrom: true}, 1},
		{"binary junk", "\x00\xff\r\x00\r\n", "\x00\xff\r\x00\n", Options{}, 1},
	} {
		var out bytes.Buffer
		st, err := Copy(&out, iotest.HalfReader(strings.NewReader(tc.in)), tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if out.String() != tc.out {
			t.Errorf("%s: got %.80q want %.80q", tc.name, out.String(), tc.out)
		}
		if st.Bytes != int64(len(tc.out)) || st.BareLF != tc.bareLF {
			t.Errorf("%s: stats %+v, want bytes %d bareLF %d", tc.name, st, len(tc.out), tc.bareLF)
		}
	}
}

func TestCopyErrors(t *testing.T) {
	boom := errors.New("boom")
	var out bytes.Buffer
	_, err := Copy(&out, io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(boom)), Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("read error: %v", err)
	}
	_, err = Copy(failWriter{}, strings.NewReader("a\n"), Options{})
	if !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("write error: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrShortWrite }
