package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// migrationSeeds put at least one row in every table of the schema version
// they are written for. Starting from version v, the test runs the seed with
// the largest key <= v. A migration that adds a table adds a seed at its
// version (the test fails until it does: every table must hold data).
var migrationSeeds = map[int]func(ctx context.Context, tx *sql.Tx) error{
	1: execAll(
		`INSERT INTO accounts (id, name, created_ms) VALUES ('111122223333', 'admin', 1), ('444455556666', 'alice', 2)`,
		`INSERT INTO access_keys (id, account_id, user_name, secret, active, created_ms) VALUES
			('AKIAAAAAAAAAAAAAAAAA', '111122223333', 'admin', 'secret-a', 1, 1),
			('AKIABBBBBBBBBBBBBBBB', '444455556666', 'admin', 'secret-b', 0, 2)`,
		`INSERT INTO user_certs (fingerprint, account_id, user_name, cert_pem, active, created_ms) VALUES
			('ab12', '111122223333', 'admin', '-----BEGIN CERTIFICATE-----', 1, 1)`,
		`INSERT INTO key_pairs (id, account_id, name, key_type, fingerprint, public_key, created_ms) VALUES
			('key-0123456789abcdef0', '111122223333', 'mykey', 'rsa', '1f:51', 'ssh-rsa AAAA', 3)`,
		`INSERT INTO vpcs (id, account_id, cidr, is_default, created_ms) VALUES
			('vpc-0123456789abcdef0', '111122223333', '172.31.0.0/16', 1, 4)`,
		`INSERT INTO subnets (id, account_id, vpc_id, zone, cidr, default_for_az, map_public_ip, created_ms) VALUES
			('subnet-0123456789abcdef0', '111122223333', 'vpc-0123456789abcdef0', 'us-euca-1a', '172.31.0.0/16', 1, 1, 5)`,
		`INSERT INTO security_groups (id, account_id, vpc_id, name, description, created_ms) VALUES
			('sg-0123456789abcdef0', '111122223333', 'vpc-0123456789abcdef0', 'default', 'default VPC security group', 6)`,
		`INSERT INTO security_group_rules (id, group_id, egress, protocol, from_port, to_port, cidr_ipv4, description, created_ms) VALUES
			('sgr-0123456789abcdef0', 'sg-0123456789abcdef0', 1, '-1', -1, -1, '0.0.0.0/0', 'all out', 7)`,
		`INSERT INTO tags (account_id, resource_id, resource_type, key, value) VALUES
			('111122223333', 'vpc-0123456789abcdef0', 'vpc', 'Name', 'main')`,
		// A type changed by the administrator must keep its sizes.
		`UPDATE vm_types SET memory_mb = 192 WHERE name = 'm1.small'`,
	),
}

// tableSeeds put rows in the tables added after version 1, keyed by the
// first table a migration creates (the rows may fill all of that
// migration's tables): each file that adds tables registers its rows here
// (in an init of its _test.go), and the test applies them at every version
// where the table exists, in the order of the migrations. Rows may refer to
// the version 1 seed's accounts ('111122223333', '444455556666').
var tableSeeds = map[string][]string{}

func seedTables(ctx context.Context, s *Store, version int) error {
	type seed struct {
		table string
		v     int
	}
	var todo []seed
	for table := range tableSeeds {
		v := versionAddingTable(table)
		if v <= version {
			todo = append(todo, seed{table, v})
		}
	}
	sort.Slice(todo, func(i, j int) bool {
		if todo[i].v != todo[j].v {
			return todo[i].v < todo[j].v
		}
		return todo[i].table < todo[j].table
	})
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, sd := range todo {
			if err := execAll(tableSeeds[sd.table]...)(ctx, tx); err != nil {
				return fmt.Errorf("seed %s: %w", sd.table, err)
			}
		}
		return nil
	})
}

// migrationRewrites lists "table.column" values that a migration changes on
// purpose; every other value that existed before a migration must survive it.
var migrationRewrites = map[string]bool{}

// TestMigrationsKeepData starts from every schema version that a later
// migration changes, fills every table, migrates to the latest version and
// checks that each row and each of its columns survived.
func TestMigrationsKeepData(t *testing.T) {
	if migrationSeeds[1] == nil {
		t.Fatal("no seed for schema version 1")
	}
	for from := 1; from < SchemaVersion(); from++ {
		t.Run(fmt.Sprintf("from-v%d", from), func(t *testing.T) {
			ctx := context.Background()
			s := openAtVersion(t, from)
			seed := 0
			for v := range migrationSeeds {
				if v <= from && v > seed {
					seed = v
				}
			}
			if err := s.tx(ctx, func(tx *sql.Tx) error { return migrationSeeds[seed](ctx, tx) }); err != nil {
				t.Fatalf("seed v%d at v%d: %v", seed, from, err)
			}
			if err := seedTables(ctx, s, from); err != nil {
				t.Fatalf("table seeds at v%d: %v", from, err)
			}
			before := snapshotTables(t, s)
			for table, rows := range before {
				if len(rows) == 0 {
					t.Errorf("table %s is empty at v%d: add its rows to a seed so migrations are tested with data in it", table, from)
				}
			}
			if err := s.migrate(ctx); err != nil {
				t.Fatalf("migrate v%d -> v%d: %v", from, SchemaVersion(), err)
			}
			after := snapshotTables(t, s)
			for table, rows := range before {
				got, ok := after[table]
				if !ok {
					t.Errorf("table %s was dropped", table)
					continue
				}
				for key, row := range rows {
					newRow, ok := got[key]
					if !ok {
						t.Errorf("%s row %s lost", table, key)
						continue
					}
					for col, v := range row {
						nv, ok := newRow[col]
						if !ok || migrationRewrites[table+"."+col] {
							continue // dropped or rewritten on purpose
						}
						if !reflect.DeepEqual(v, nv) {
							t.Errorf("%s row %s column %s: %v became %v", table, key, col, v, nv)
						}
					}
				}
			}
		})
	}
}

// TestMigrateFreshHasDefaults: a new database holds the Eucalyptus 1.5 VM
// types, in order.
func TestMigrateFreshHasDefaults(t *testing.T) {
	s := openAtVersion(t, SchemaVersion())
	types, err := s.VMTypes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range types {
		names = append(names, v.Name)
	}
	want := []string{"m1.small", "c1.medium", "m1.large", "m1.xlarge", "c1.xlarge"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("vm types %v, want %v", names, want)
	}
	if err := CheckVMTypeOrder(types, ""); err != nil {
		t.Fatalf("defaults out of order: %v", err)
	}
}

// openAtVersion opens a new database migrated only up to version v.
func openAtVersion(t *testing.T, v int) *Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	w, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{w: w, r: r, path: path}
	t.Cleanup(func() { s.Close() })
	if err := s.migrateTo(context.Background(), v); err != nil {
		t.Fatalf("migrate to v%d: %v", v, err)
	}
	return s
}

// snapshotTables reads every user table: table -> primary key -> column -> value.
func snapshotTables(t *testing.T, s *Store) map[string]map[string]map[string]any {
	t.Helper()
	ctx := context.Background()
	rows, err := s.w.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_version'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	out := map[string]map[string]map[string]any{}
	for _, table := range tables {
		pk := primaryKey(t, s, table)
		rows, err := s.w.QueryContext(ctx, `SELECT rowid AS "`+rowidCol+`", * FROM "`+table+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		out[table] = map[string]map[string]any{}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := map[string]any{}
			for i, c := range cols {
				row[c] = vals[i]
			}
			var key []string
			for _, c := range pk {
				key = append(key, fmt.Sprint(row[c]))
			}
			delete(row, rowidCol) // a rebuilt table may renumber its rows
			out[table][strings.Join(key, "/")] = row
		}
		rows.Close()
	}
	return out
}

// rowidCol is the name the snapshot gives SQLite's rowid.
const rowidCol = "_snapshot_rowid"

// primaryKey names a table's key columns; a table without one is keyed by
// its rowid.
func primaryKey(t *testing.T, s *Store, table string) []string {
	t.Helper()
	rows, err := s.w.QueryContext(context.Background(), `SELECT name, pk FROM pragma_table_info(?)`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type col struct {
		name string
		pk   int
	}
	var keys []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.name, &c.pk); err != nil {
			t.Fatal(err)
		}
		if c.pk > 0 {
			keys = append(keys, c)
		}
	}
	if len(keys) == 0 {
		return []string{rowidCol}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].pk < keys[j].pk })
	var names []string
	for _, c := range keys {
		names = append(names, c.name)
	}
	return names
}
