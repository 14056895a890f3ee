package store

import (
	"context"
	"errors"
	"testing"
)

func TestClusterRegister(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		Cluster
		added bool
		err   error
	}{
		{Cluster{Name: "euca-1b", Host: "10.0.0.5", Port: 8774}, true, nil},
		{Cluster{Name: "euca-1c", Host: "cc3.example", Port: 8774}, true, nil},
		{Cluster{Name: "euca-1b", Host: "10.0.0.5", Port: 9774}, false, nil},         // again: the port moves
		{Cluster{Name: "euca-1b", Host: "10.0.0.6", Port: 8774}, false, ErrConflict}, // another host: refused
	} {
		added, err := s.RegisterCluster(ctx, c.Cluster)
		if added != c.added || !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Fatalf("register %+v: added %v, %v", c.Cluster, added, err)
		}
	}
	got, err := s.Clusters(ctx)
	if err != nil || len(got) != 2 || got[0].Name != "euca-1b" || got[0].Host != "10.0.0.5" || got[0].Port != 9774 ||
		got[1].Name != "euca-1c" || got[0].RegisteredMS == 0 {
		t.Fatalf("clusters %+v, %v", got, err)
	}
	if err := s.DeregisterCluster(ctx, "euca-1b"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeregisterCluster(ctx, "euca-1b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deregister twice: %v", err)
	}
	if got, _ := s.Clusters(ctx); len(got) != 1 || got[0].Name != "euca-1c" {
		t.Fatalf("after deregister: %+v", got)
	}
}

func init() {
	tableSeeds["clc_clusters"] = []string{
		`INSERT INTO clc_clusters (name, host, port, registered_ms) VALUES ('us-euca-1b', '10.0.0.5', 8774, 11)`,
	}
}
