package smtp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func dataOf(t testing.TB, chunks ...string) string {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	d := NewDataWriter(w)
	for _, c := range chunks {
		if _, err := d.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return buf.String()
}

func TestDataWriter(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"Subject: x\n\nbody\n"}, "Subject: x\r\n\r\nbody\r\n.\r\n"},
		{[]string{"a\r\nb\r\n"}, "a\r\nb\r\n.\r\n"},
		{[]string{"no end"}, "no end\r\n.\r\n"},
		{[]string{".\n..x\n"}, "..\r\n...x\r\n.\r\n"},
		// Smuggling: a bare LF or CR before "." must not end the data
		// for some servers and not for others.
		{[]string{"a\n.\nb\n"}, "a\r\n..\r\nb\r\n.\r\n"},
		{[]string{"a\r.\rb\n"}, "a\r\n..\r\nb\r\n.\r\n"},
		{[]string{"a\r\n.\r\nb"}, "a\r\n..\r\nb\r\n.\r\n"},
		{[]string{"x\r\r\n"}, "x\r\n\r\n.\r\n"},
		// Chunk boundaries change nothing.
		{[]string{"a\r", "\nb\r", "", "\n.", "c"}, "a\r\nb\r\n..c\r\n.\r\n"},
		{[]string{""}, ".\r\n"},
	} {
		if got := dataOf(t, c.in...); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzDataWriter checks what any next hop relies on: only CRLF line
// ends, no line that is a lone "." before the end, and the content
// unchanged apart from line ends and dot-stuffing, however it is split.
func FuzzDataWriter(f *testing.F) {
	f.Add([]byte("Subject: x\n\n.body\r\n.\r\n"), 3)
	f.Add([]byte("a\r.\rb\n\r\n.\n"), 1)
	f.Add([]byte("\r\r\n\n."), 2)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		if split < 0 {
			split = -split
		}
		var chunks []string
		if split > 0 && split < len(in) {
			chunks = []string{string(in[:split]), string(in[split:])}
		} else {
			chunks = []string{string(in)}
		}
		out := dataOf(t, chunks...)
		if out != dataOf(t, string(in)) {
			t.Fatalf("split at %d changes the output", split)
		}
		if !strings.HasSuffix(out, "\r\n.\r\n") && out != ".\r\n" {
			t.Fatalf("no terminator: %q", out)
		}
		body := strings.TrimSuffix(out, ".\r\n")
		for i := 0; i < len(body); i++ {
			if body[i] == '\n' && (i == 0 || body[i-1] != '\r') || body[i] == '\r' && (i+1 >= len(body) || body[i+1] != '\n') {
				t.Fatalf("bare line end at %d: %q", i, out)
			}
		}
		lines := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
		var unstuffed []string
		for _, l := range lines {
			if l == "." {
				t.Fatalf("lone dot inside the data: %q", out)
			}
			unstuffed = append(unstuffed, strings.TrimPrefix(l, "."))
		}
		// Undo the line-end conversion on the input: every CRLF, CR or LF is one line end.
		norm := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(in))
		want := strings.TrimSuffix(norm, "\n")
		if body == "" {
			if want != "" {
				t.Fatalf("content lost: %q", in)
			}
			return
		}
		if got := strings.Join(unstuffed, "\n"); got != want {
			t.Fatalf("content changed: %q -> %q", want, got)
		}
	})
}
