package postkick

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"postdove/pkg/queue"
)

func TestKick(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, queue.Public), 0o755)
	ch, closer, err := queue.Listen(dir, "qmgr")
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("queue_directory = "+dir+"\n"), 0o644)
	var errb bytes.Buffer
	if code := Main([]string{"-c", dir, "public", "qmgr", "AF"}, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []byte("AF") {
		select {
		case got := <-ch:
			if got != want {
				t.Errorf("request %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("request %q never arrived", want)
		}
	}
	errb.Reset()
	if code := Main([]string{"-c", dir, "public", "nosuch", "W"}, &errb); code != 1 ||
		errb.String() != "postkick: warning: unable to look up public/nosuch: No such file or directory\n"+
			"postkick: warning: Cannot contact class public service nosuch - perhaps the mail system is down\n" {
		t.Errorf("nosuch: exit %d: %q", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"-c", dir, "public", "qmgr"}, &errb); code != 1 || errb.String() != "postkick: fatal: "+Usage+"\n" {
		t.Errorf("two words: exit %d: %q", code, errb.String())
	}
}
