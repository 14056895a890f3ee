package walrus

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/euca-cloud/euca/internal/awsauth"
)

// BenchmarkPutGet measures the server side of PUT and GET through HTTP on
// loopback, with a signed payload hash as the SDKs send over HTTP
// (bench/walrus.sh measures with a real client).
func BenchmarkPutGet(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20, 64 << 20} {
		data := bytes.Repeat([]byte("walrus!"), size/7+1)[:size]
		sum := sha256Hex(data)
		t := &testing.T{}
		e := newEnv(t)
		e.t = t
		e.must(e.do(v4(e.alice, ""), "PUT", "/bench", nil), 200)
		b.Run(fmt.Sprintf("PUT-%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				if r := e.do(v4(e.alice, sum), "PUT", fmt.Sprintf("/bench/o%d", i%4), data); r.status != http.StatusOK {
					b.Fatal(r)
				}
			}
		})
		b.Run(fmt.Sprintf("PUT-unsigned-%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				if r := e.do(v4(e.alice, awsauth.UnsignedPayload), "PUT", fmt.Sprintf("/bench/o%d", i%4), data); r.status != http.StatusOK {
					b.Fatal(r)
				}
			}
		})
		b.Run(fmt.Sprintf("GET-%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				if r := e.do(v4(e.alice, ""), "GET", fmt.Sprintf("/bench/o%d", i%4), nil); r.status != http.StatusOK || len(r.body) != size {
					b.Fatal(r)
				}
			}
		})
		e.srv.Close()
	}
}
