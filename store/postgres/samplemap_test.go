package postgres

import (
	"context"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/storetest"
)

func TestSampleMap(t *testing.T) {
	storetest.RunSampleMap(t,
		func(t *testing.T) store.Store { return openTemp(t) },
		func(t *testing.T, old store.Store) store.Store {
			dsn := old.(*Store).dsn
			if err := old.Close(); err != nil {
				t.Fatalf("Close() error: %v", err)
			}
			return openDSN(t, dsn)
		})
}

// TestMigrate2: a schema of version 2 (without the sample index tables) is
// migrated by Open and gets an empty map.
func TestMigrate2(t *testing.T) {
	ctx := context.Background()
	dsn := openTemp(t).dsn
	s := openDSN(t, dsn)
	for _, q := range []string{"DROP TABLE sample_tiles", "DROP TABLE sample_map", "UPDATE schema_version SET version = 2"} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = openDSN(t, dsn)
	var version int
	if err := s.pool.QueryRow(ctx, "SELECT version FROM schema_version").Scan(&version); err != nil || version != schemaVersion {
		t.Errorf("schema_version after migration = %d, %v; want %d", version, err, schemaVersion)
	}
	if size, err := s.SampleMapSize(ctx); err != nil || size != 0 {
		t.Errorf("SampleMapSize() after migration = %d, %v; want 0", size, err)
	}
}
