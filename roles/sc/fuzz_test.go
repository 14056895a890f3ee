package sc_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/euca-cloud/euca/internal/pki"
	"github.com/euca-cloud/euca/roles/sc"
	"github.com/euca-cloud/euca/roles/sc/backend"
	"github.com/euca-cloud/euca/roles/sc/scapi"
	"github.com/euca-cloud/euca/store"
)

// FuzzLookup: whatever export name and certificate name a client sends
// (the name comes off the network), only the live export's exact name,
// from the node it was made for, opens the volume.
func FuzzLookup(f *testing.F) {
	ctx := context.Background()
	st, err := store.Open(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	be, err := backend.NewFiles(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	s, err := sc.New(ctx, sc.Options{Zone: zone, Store: st, Backend: be, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateVolume(ctx, scapi.CreateVolumeRequest{ID: "vol-f", SizeBytes: 1 << 20}); err != nil {
		f.Fatal(err)
	}
	waitState(f, s, "vol-f", scapi.VolumeAvailable)
	tg, err := s.Export(ctx, scapi.ExportRequest{VolumeID: "vol-f", Node: "node1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tg.Export, "nc:node1")
	f.Add(tg.Export, "nc:node2")
	f.Add(tg.Export, "clc:node1")
	f.Add("vol-f", "nc:node1")
	f.Add("vol-f/", "nc:node1")
	f.Add("vol-f/"+tg.Export[6:]+"x", "nc:node1")
	f.Add("../vol-f/"+tg.Export[6:], "nc:node1")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, name, cn string) {
		cert := &x509.Certificate{Subject: pkix.Name{CommonName: cn, Organization: []string{pki.InternalOrg}}}
		exp, err := s.Lookup(ctx, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}, name)
		// Host names are compared as DNS compares them: without case.
		ok := name == tg.Export && strings.HasPrefix(cn, "nc:") && strings.EqualFold(cn[3:], "node1")
		if exp != nil {
			exp.(io.Closer).Close()
		}
		if ok != (err == nil) {
			t.Fatalf("Lookup(%q) as %q: %v, want allowed=%v", name, cn, err, ok)
		}
	})
}
