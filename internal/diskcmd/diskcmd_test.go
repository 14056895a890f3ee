package diskcmd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Sum is the hash of what `yes SEED | head -c MIB MiB` prints.
func TestSum(t *testing.T) {
	want := bytes.Repeat([]byte("ab7\n"), (1<<20)/4)
	s := sha256.Sum256(want)
	if got := Sum("ab7", 1); got != hex.EncodeToString(s[:]) {
		t.Errorf("Sum(ab7, 1) = %s, want %x", got, s)
	}
	// A line length that does not divide a MiB: cut mid-line.
	var b bytes.Buffer
	for b.Len() < 2<<20 {
		b.WriteString("seed-xyz\n")
	}
	s = sha256.Sum256(b.Bytes()[:2<<20])
	if got := Sum("seed-xyz", 2); got != hex.EncodeToString(s[:]) {
		t.Errorf("Sum(seed-xyz, 2) = %s, want %x", got, s)
	}
}

func TestServeAndFind(t *testing.T) {
	s, err := Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if w, r := s.Write("vol0a", "s1", 4), s.Read("vol0a", 4); w != 1 || r != 2 {
		t.Errorf("seqs %d %d", w, r)
	}
	res, err := http.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "1 write vol0a s1 4\n2 read vol0a 4\n" {
		t.Errorf("body %q", body)
	}
	if !strings.HasPrefix(s.UserData(), "EUCA-DISKCMD http://127.0.0.1:") {
		t.Errorf("user data %q", s.UserData())
	}
	con := []byte("EUCA-READY\r\nEUCA-DISK seq=1 op=write serial=vol0a dev=vdd sha256=abc\r\nEUCA-DISK seq=2 error=no-disk serial=vol0a\n")
	if r, ok := Find(con, 1); !ok || r != (Result{Seq: 1, Op: "write", Serial: "vol0a", Dev: "vdd", SHA256: "abc"}) {
		t.Errorf("Find 1 = %+v, %v", r, ok)
	}
	if r, ok := Find(con, 2); !ok || r.Error != "no-disk serial=vol0a" {
		t.Errorf("Find 2 = %+v, %v", r, ok)
	}
	if _, ok := Find(con, 3); ok {
		t.Error("Find 3 found")
	}
	if n := s.Time(RandRead, "vol0a", 32, 300); n != 3 {
		t.Errorf("Time seq %d", n)
	}
	con = append(con, "EUCA-DISK seq=3 op=randread serial=vol0a dev=vdb mib=32 n=300 ms=4210\r\n"...)
	if r, ok := Find(con, 3); !ok || r != (Result{Seq: 3, Op: "randread", Serial: "vol0a", Dev: "vdb", Millis: 4210}) {
		t.Errorf("Find 3 = %+v, %v", r, ok)
	}
}

// Each guest polls a list of its own; numbers stay unique across lists.
func TestGuests(t *testing.T) {
	s, err := Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := s.Guest("a"), s.Guest("b")
	if s.Guest("a") != a {
		t.Error("a second Guest(a) is another list")
	}
	if n := [...]int{a.Write("vol0a", "x", 1), b.Read("vol0a", 1), s.Read("vol0b", 2), a.Read("vol0a", 1)}; n != [4]int{1, 2, 3, 4} {
		t.Errorf("seqs %v", n)
	}
	for url, want := range map[string]string{a.URL(): "1 write vol0a x 1\n4 read vol0a 1\n", b.URL(): "2 read vol0a 1\n", s.URL(): "3 read vol0b 2\n"} {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != want {
			t.Errorf("%s: %q, want %q", url, body, want)
		}
	}
	if res, err := http.Get(s.URL() + "/c"); err != nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown guest: %v %v", res.StatusCode, err)
	}
	if !strings.HasSuffix(b.UserData(), "/disk/b") {
		t.Errorf("user data %q", b.UserData())
	}
}
