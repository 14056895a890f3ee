package images

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/rpc"
	"github.com/euca-cloud/euca/internal/rpc/rpctest"
)

// TestHandler: the image download over mutual TLS, with each refusal's
// status and the sentinel it decodes to. (roles/nc's HTTPImageSource test
// fetches through it into a node's cache.)
func TestHandler(t *testing.T) {
	f := newFixture(t, 64)
	b := f.upload("", "img", 100<<10, 7, f.keys.cloud.Cert)
	if _, _, err := f.unbundle(b); err != nil {
		t.Fatal(err)
	}
	f.register("emi-00000000000000001", b)

	ca := f.keys.cloud
	addr := rpctest.Serve(t, ca, f.s.Handler())
	c := rpctest.Client(addr, ca, rpctest.ClientCert(t, ca, "nc:test"))
	ctx := context.Background()

	rc, err := c.Open(ctx, ImagePath+"emi-00000000000000001?sha256="+b.sum+"&size=102400")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, b.data) {
		t.Fatalf("download: %d bytes, %v", len(got), err)
	}

	zero := strings.Repeat("0", 64)
	for _, tc := range []struct {
		name, path string
		status     int
		want       error
	}{
		{"unknown image", "emi-00000000000000009?sha256=" + zero, http.StatusNotFound, ErrUnknownImage},
		{"other digest", "emi-00000000000000001?sha256=" + zero, http.StatusConflict, ErrDigest},
		{"other size", "emi-00000000000000001?sha256=" + b.sum + "&size=5", http.StatusConflict, ErrDigest},
		{"malformed digest", "emi-00000000000000001?sha256=abc", http.StatusBadRequest, errBadRef},
		{"malformed size", "emi-00000000000000001?sha256=" + b.sum + "&size=x", http.StatusBadRequest, errBadRef},
	} {
		_, err := c.Open(ctx, ImagePath+tc.path)
		var re *rpc.Error
		if err = Errors.Decode(err); !errors.As(err, &re) || re.Status != tc.status || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want HTTP %d and %v", tc.name, err, tc.status, tc.want)
		}
	}

	// A user's certificate chains to the same CA but is not a role.
	user := tls.Certificate{Certificate: [][]byte{f.keys.userCert.Raw}, PrivateKey: f.keys.userKey}
	uc := rpctest.Client(addr, ca, user)
	if rc, err := uc.Open(ctx, ImagePath+"emi-00000000000000001?sha256="+b.sum); err == nil {
		rc.Close()
		t.Error("an image was served to a user's certificate")
	}
	// A role that has no business with images: refused by role.
	wc := rpctest.Client(addr, ca, rpctest.ClientCert(t, ca, "walrus:other"))
	if rc, err := wc.Open(ctx, ImagePath+"emi-00000000000000001?sha256="+b.sum); err == nil || !strings.Contains(err.Error(), "may not make this call") {
		if err == nil {
			rc.Close()
		}
		t.Errorf("an image was served to role walrus: %v", err)
	}
}
