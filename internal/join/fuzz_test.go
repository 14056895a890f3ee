package join

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/store"
)

// freshSecret in a fuzzed join request stands for the secret of a token
// made for that request.
const freshSecret = "@FRESH-SECRET@"

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
	// The same with a placeholder for a fresh token's secret: past the
	// token check, the names, addresses, claims and certificate request are
	// fuzzed too, not only in the first input that uses the token up.
	template, _ := json.Marshal(joinRequest{Secret: freshSecret, Role: "nc", Host: "node2", DNSNames: []string{"node2.lan"}, Addresses: []string{"192.0.2.8", "198.51.100.8"}, CSR: csr})
	f.Add(template)
	srv := NewServer(ca, st, discard)
	if _, err := srv.FrontEndTLSConfig([]string{"frontend"}, []net.IP{net.IPv4(192, 0, 2, 254)}); err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		if bytes.Contains(body, []byte(freshSecret)) {
			tok, hash, exp, err := pki.NewJoinToken(ca, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.CreateJoinToken(context.Background(), store.JoinToken{SecretHash: hash, Role: "nc", ExpiresMS: exp.UnixMilli()}); err != nil {
				t.Fatal(err)
			}
			_, secret, _ := pki.ParseJoinToken(tok)
			body = bytes.ReplaceAll(body, []byte(freshSecret), []byte(hex.EncodeToString(secret)))
		}
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

// FuzzJoinFields: the names, addresses and certificate request a joining
// host sends are checked before anything is signed; whatever they are,
// what passes is a host name, addresses that are neither unspecified nor
// multicast, and a request whose signature holds.
func FuzzJoinFields(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := certRequest(key, "nc:node1")
	f.Add("node1", "node1.example.com", "192.0.2.7,2001:db8::1", []byte(csr))
	f.Add("-bad-", "a..b", "::ffff:10.0.0.1,fe80::1%eth0,0.0.0.0,224.0.0.1", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, host, names, addrs string, csr []byte) {
		req := joinRequest{Host: host, DNSNames: strings.Split(names, ","), Addresses: strings.Split(addrs, ","), CSR: string(csr)}
		if checkHostName(req.Host) != nil {
			return
		}
		gotNames, ips, err := sans(req, netip.MustParseAddr("198.51.100.1"))
		if err == nil {
			for _, n := range gotNames {
				if !hostName.MatchString(n) || len(n) > maxNameLen {
					t.Fatalf("name %q passed", n)
				}
			}
			if len(ips) == 0 || !ips[0].Equal(net.ParseIP("198.51.100.1")) {
				t.Fatalf("the request's own address is not first: %v", ips)
			}
			for _, ip := range ips {
				if ip == nil || ip.IsUnspecified() || ip.IsMulticast() {
					t.Fatalf("address %v passed", ip)
				}
			}
		}
		if c, err := parseCSR(req.CSR); err == nil && c.CheckSignature() != nil {
			t.Fatal("a request with a bad signature passed")
		}
	})
}
