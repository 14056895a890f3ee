package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func init() {
	tableSeeds["images"] = []string{
		`INSERT INTO images (id, account_id, kind, name, location, architecture, state, created_ms) VALUES
			('emi-0123456789abcdef0', '111122223333', 'machine', 'debian', 'images/debian.manifest.xml', 'x86_64', 'available', 8)`,
		`INSERT INTO image_launch_permissions (image_id, account_id) VALUES ('emi-0123456789abcdef0', '444455556666')`,
	}
}

func TestImagesVisibility(t *testing.T) {
	ctx := context.Background()
	s := openAtVersion(t, SchemaVersion())
	if err := s.tx(ctx, func(tx *sql.Tx) error {
		return execAll(`INSERT INTO accounts (id, name, created_ms) VALUES ('111122223333', 'admin', 1), ('444455556666', 'alice', 2), ('777788889999', 'bob', 3)`)(ctx, tx)
	}); err != nil {
		t.Fatal(err)
	}
	im := Image{ID: "emi-00000000000000001", AccountID: "111122223333", Kind: ImageMachine, Name: "debian",
		Location: "b/debian.manifest.xml", Architecture: "x86_64", State: ImageAvailable, Tags: []Tag{{"Name", "deb"}}}
	if err := s.CreateImage(ctx, im); err != nil {
		t.Fatal(err)
	}
	im2 := im
	im2.ID = "emi-00000000000000002"
	if err := s.CreateImage(ctx, im2); !errors.Is(err, ErrConflict) {
		t.Fatalf("same name twice: %v", err)
	}
	visible := func(acct string) int {
		l, err := s.ImagesVisibleTo(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	if visible("111122223333") != 1 || visible("444455556666") != 0 {
		t.Fatal("private image visibility wrong")
	}
	if err := s.UpdateImage(ctx, "444455556666", im.ID, ImageUpdate{AddLaunch: []string{"444455556666"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("non-owner changed launch permissions: %v", err)
	}
	if err := s.UpdateImage(ctx, "111122223333", im.ID, ImageUpdate{AddLaunch: []string{"444455556666"}}); err != nil {
		t.Fatal(err)
	}
	if visible("444455556666") != 1 || visible("777788889999") != 0 {
		t.Fatal("launch permission visibility wrong")
	}
	pub := true
	if err := s.UpdateImage(ctx, "111122223333", im.ID, ImageUpdate{Public: &pub, ResetLaunch: true}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ImageByID(ctx, im.ID)
	if err != nil || !got.Public || len(got.LaunchPermissions) != 0 || len(got.Tags) != 1 {
		t.Fatalf("after update: %+v %v", got, err)
	}
	if visible("777788889999") != 1 {
		t.Fatal("public image not visible")
	}
	if err := s.DeleteImage(ctx, "444455556666", im.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("non-owner deleted: %v", err)
	}
	if err := s.DeleteImage(ctx, "111122223333", im.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImageByID(ctx, im.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted image: %v", err)
	}
}

// versionAddingTable is the schema version whose migration creates table:
// seeds are keyed by it, so they stay right when migrations are appended
// in another order.
func versionAddingTable(table string) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "euca-store-version-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	for v := 1; v <= len(migrations); v++ {
		var n int
		path := filepath.Join(dir, fmt.Sprint(v))
		w, err := sql.Open("sqlite", dsn(path, false))
		if err != nil {
			panic(err)
		}
		w.SetMaxOpenConns(1)
		r, err := sql.Open("sqlite", dsn(path, true))
		if err != nil {
			panic(err)
		}
		t := &Store{w: w, r: r, path: path}
		if err := t.migrateTo(ctx, v); err != nil {
			panic(err)
		}
		err = t.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n)
		t.Close()
		if err != nil {
			panic(err)
		}
		if n > 0 {
			return v
		}
	}
	panic("no migration creates table " + table)
}

// TestImageManifestInfo: the manifest's root device, block device mappings
// and product codes are kept once schemaImagesManifest has run, and images
// survive a round trip.
func TestImageManifestInfo(t *testing.T) {
	ctx := context.Background()
	s := openAtVersion(t, SchemaVersion())
	if err := s.tx(ctx, func(tx *sql.Tx) error {
		return execAll(`INSERT INTO accounts (id, name, created_ms) VALUES ('111122223333', 'admin', 1)`)(ctx, tx)
	}); err != nil {
		t.Fatal(err)
	}
	im := Image{ID: "emi-00000000000000001", AccountID: "111122223333", Kind: ImageMachine, Name: "debian",
		Location: "b/debian.manifest.xml", Architecture: "x86_64", State: ImageAvailable, SHA256: "ab", SizeBytes: 7,
		RootDeviceName: "/dev/sda1", BlockDevices: []ImageBlockDevice{{Virtual: "ephemeral0", Device: "sda2"}, {Virtual: "swap", Device: "sda3"}}, ProductCodes: []string{"pc1"}}

	if err := s.CreateImage(ctx, im); err != nil {
		t.Fatal(err)
	}
	got, err := s.ImageByID(ctx, im.ID)
	if err != nil || got.RootDeviceName != "/dev/sda1" || len(got.BlockDevices) != 2 || got.BlockDevices[1] != (ImageBlockDevice{Virtual: "swap", Device: "sda3"}) ||
		len(got.ProductCodes) != 1 || got.SizeBytes != 7 {
		t.Fatalf("stored %+v, read %+v (%v)", im, got, err)
	}
	list, err := s.ImagesVisibleTo(ctx, im.AccountID)
	if err != nil || len(list) != 1 || list[0].RootDeviceName != "/dev/sda1" {
		t.Fatalf("listed %+v %v", list, err)
	}
	taken, err := s.ImageNameTaken(ctx, im.AccountID, "debian")
	if err != nil || !taken {
		t.Fatalf("name taken: %v %v", taken, err)
	}
	if taken, _ := s.ImageNameTaken(ctx, im.AccountID, "other"); taken {
		t.Fatal("free name reported taken")
	}
	if taken, _ := s.ImageNameTaken(ctx, "444455556666", "debian"); taken {
		t.Fatal("names are per account")
	}
	// Images are tagged by their owner only.
	if err := s.TagResources(ctx, im.AccountID, []string{im.ID}, []Tag{{"k", "v"}}); err != nil {
		t.Fatalf("tag an image: %v", err)
	}
	if err := s.TagResources(ctx, "444455556666", []string{im.ID}, []Tag{{"k", "v"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another account tagged the image: %v", err)
	}
}
