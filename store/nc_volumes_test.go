package store

import (
	"context"
	"testing"
)

func init() {
	tableSeeds["nc_volumes"] = []string{
		`INSERT INTO nc_volumes (instance_id, volume_id, attachment, state, updated_ms) VALUES ('i-1', 'vol-1', '{"volume_id":"vol-1"}', 'attached', 5)`,
	}
}

func TestNCVolumes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, v := range []NCVolume{
		{InstanceID: "i-b", VolumeID: "vol-2", Attachment: "{}", State: "attaching"},
		{InstanceID: "i-a", VolumeID: "vol-1", Attachment: "{}", State: "attached"},
		{InstanceID: "i-b", VolumeID: "vol-1", Attachment: "{}", State: "attached"},
	} {
		if err := s.NCPutVolume(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.NCPutVolume(ctx, NCVolume{InstanceID: "i-b", VolumeID: "vol-2", Attachment: `{"x":1}`, State: "detaching"}); err != nil {
		t.Fatal(err)
	}
	var vs []NCVolume
	vs, err = s.NCVolumes(ctx)
	if err != nil || len(vs) != 3 {
		t.Fatalf("%+v, %v", vs, err)
	}
	if vs[0].InstanceID != "i-a" || vs[2].VolumeID != "vol-2" || vs[2].State != "detaching" || vs[2].Attachment != `{"x":1}` || vs[2].UpdatedMS == 0 {
		t.Errorf("volumes %+v", vs)
	}
	if err := s.NCDeleteVolume(ctx, "i-b", "vol-2"); err != nil {
		t.Fatal(err)
	}
	if err := s.NCDeleteVolume(ctx, "i-b", "vol-9"); err != nil {
		t.Fatal(err)
	}
	if err := s.NCDeleteVolumes(ctx, "i-b"); err != nil {
		t.Fatal(err)
	}
	if vs, _ := s.NCVolumes(ctx); len(vs) != 1 || vs[0].InstanceID != "i-a" {
		t.Errorf("after deletes: %+v", vs)
	}
}
