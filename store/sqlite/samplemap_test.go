package sqlite

import (
	"context"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/storetest"
)

func TestSampleMap(t *testing.T) {
	storetest.RunSampleMap(t, func(t *testing.T) store.Store { return openTemp(t) }, reopenTemp)
}

// TestMigrate2: a database of schema version 2 (without the sample index
// tables) is migrated by Open, keeps its log, and gets an empty map.
func TestMigrate2(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for _, q := range []string{"DROP TABLE sample_tiles", "DROP TABLE sample_map", "UPDATE schema_version SET version = 2"} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s2 := reopenTemp(t, s).(*Store)
	var version int
	if err := s2.r.QueryRowContext(ctx, "SELECT version FROM schema_version").Scan(&version); err != nil || version != schemaVersion {
		t.Errorf("schema_version after migration = %d, %v; want %d", version, err, schemaVersion)
	}
	if size, err := s2.SampleMapSize(ctx); err != nil || size != 0 {
		t.Errorf("SampleMapSize() after migration = %d, %v; want 0", size, err)
	}
}
