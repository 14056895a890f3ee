package join

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/store"
)

// FuzzJoinRequest: whatever a host that has not joined sends to the join
// call (the one call anyone may make), the answer is a certificate for a
// usable token or a refusal in the API's format, never a crash.
func FuzzJoinRequest(f *testing.F) {
	ca, err := pki.LoadOrCreateCA(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	st, err := store.Open(context.Background(), f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	tok, hash, exp, err := pki.NewJoinToken(ca, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	if err := st.CreateJoinToken(context.Background(), store.JoinToken{SecretHash: hash, Role: "nc", ExpiresMS: exp.UnixMilli()}); err != nil {
		f.Fatal(err)
	}
	_, secret, _ := pki.ParseJoinToken(tok)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := certRequest(key, "nc:node1")
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(joinRequest{Secret: hex.EncodeToString(secret), Role: "nc", Host: "node1", Addresses: []string{"192.0.2.7"}, CSR: csr})
	f.Add(good)
	h := NewServer(ca, st, discard).Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, PathJoin, bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			var resp certResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Certificate == "" {
				t.Fatalf("200 without a certificate: %s", w.Body)
			}
		case http.StatusBadRequest, http.StatusForbidden:
			var e struct{ Code, Message string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == "" {
				t.Fatalf("refusal not in the API's format: %d %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}
