package walrus

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestCompleteRace: Completes of one upload sent at once, against the real
// handler and store. The one that wins makes the object; each other one
// either arrived after it (a retry: the same answer) or lost the race while
// working (NoSuchUpload), never another error such as NoSuchBucket, which
// the loser used to get when the winner had already deleted the parts it
// was concatenating.
func TestCompleteRace(t *testing.T) {
	smallParts(t)
	e := newEnv(t)
	a := v4(e.alice, "")
	e.must(e.do(a, "PUT", "/race", nil), 200)
	const rounds, racers = 15, 4
	for round := 0; round < rounds; round++ {
		var init struct{ UploadId string }
		r := e.must(e.do(a, "POST", "/race/k?uploads", nil), 200)
		if err := xml.Unmarshal(r.body, &init); err != nil {
			t.Fatal(err)
		}
		id := url.QueryEscape(init.UploadId)
		var body strings.Builder
		body.WriteString("<CompleteMultipartUpload>")
		for n := 1; n <= 3; n++ {
			r := e.must(e.do(a, "PUT", fmt.Sprintf("/race/k?partNumber=%d&uploadId=%s", n, id), []byte(strings.Repeat(fmt.Sprint(n), 64<<10))), 200)
			fmt.Fprintf(&body, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, r.header.Get("ETag"))
		}
		body.WriteString("</CompleteMultipartUpload>")
		results := make([]resp, racers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = e.do(a, "POST", "/race/k?uploadId="+id, []byte(body.String()))
			}()
		}
		close(start)
		wg.Wait()
		etag := ""
		for _, res := range results {
			switch {
			case res.status == 200:
				var done struct{ ETag string }
				if err := xml.Unmarshal(res.body, &done); err != nil || done.ETag == "" || (etag != "" && done.ETag != etag) {
					t.Fatalf("round %d: completes answered different objects: %s vs %s", round, etag, res.body)
				}
				etag = done.ETag
			case res.status == 404 && res.code() == "NoSuchUpload":
			default:
				t.Fatalf("round %d: a racing Complete got %s", round, res)
			}
		}
		if etag == "" {
			t.Fatalf("round %d: no Complete succeeded", round)
		}
		r = e.must(e.do(a, "GET", "/race/k", nil), 200)
		if r.header.Get("ETag") != etag || len(r.body) != 3*64<<10 {
			t.Fatalf("round %d: object %s, %d bytes", round, r.header.Get("ETag"), len(r.body))
		}
	}
}
