package snapshot

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseManifest: a manifest is read back from a bucket its owner may
// write with any S3 client. Whatever it holds, parsing neither panics nor
// accepts one whose chunks do not cover its size with well-formed hashes.
func FuzzParseManifest(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add([]byte(`{"snapshot_id":"snap-1","volume_id":"vol-1","volume_size":8388608,"chunk_size":4194304,"chunks":["` + h + `",""],"created":"2026-12-07T20:00:00Z"}`))
	f.Add([]byte(`{"volume_size":1,"chunk_size":4194304,"chunks":[""]}`))
	f.Add([]byte(`{"volume_size":-1,"chunk_size":4194304,"chunks":[]}`))
	f.Add([]byte(`{"volume_size":8388608,"chunk_size":4194304,"chunks":["../etc/passwd",""]}`))
	f.Add([]byte(`{"volume_size":17592186044417,"chunk_size":4194304}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		if m.ChunkSize != ChunkSize || m.VolumeSize <= 0 || m.VolumeSize > MaxVolumeSize ||
			int64(len(m.Chunks)) != (m.VolumeSize+ChunkSize-1)/ChunkSize {
			t.Fatalf("accepted an inconsistent manifest: %+v", m)
		}
		for _, c := range m.Chunks {
			if c != "" && !hashPattern.MatchString(c) {
				t.Fatalf("accepted chunk %q", c)
			}
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(again)
		if err != nil || !reflect.DeepEqual(m2.Chunks, m.Chunks) || m2.VolumeSize != m.VolumeSize {
			t.Fatalf("round trip: %+v, %v", m2, err)
		}
	})
}
