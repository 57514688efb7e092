package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres/pgtest"
	"github.com/custodylog/custody/store/storetest"
)

// openDir opens a Store on dsn with its lookup index under dir, closed
// when t ends.
func openDir(t *testing.T, dsn, dir string) *Store {
	t.Helper()
	s, err := OpenOptions(context.Background(), dsn, Options{IndexDir: dir})
	if err != nil {
		t.Fatalf("OpenOptions(IndexDir %s) error: %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkLookups fails t unless s finds every entry of g's log (made with
// tag) by identity, leaf hash and sample, and does not find an entry of
// another tag.
func checkLookups(t *testing.T, s store.Store, size uint64, tag string) {
	t.Helper()
	ctx := context.Background()
	var ids []store.Hash
	for i := range size {
		ids = append(ids, storetest.BenchEntry(i, tag).Identity)
	}
	absent := storetest.BenchEntry(0, "absent")
	found, err := s.ByIdentity(ctx, append(ids, absent.Identity))
	if err != nil {
		t.Fatalf("ByIdentity() error: %v", err)
	}
	if len(found) != int(size) {
		t.Errorf("ByIdentity(%d identities in the log, one not) found %d", size, len(found))
	}
	for i, id := range ids {
		if got, ok := found[id]; !ok || got != uint64(i) {
			t.Errorf("ByIdentity(identity of entry %d) = %d, %v", i, got, ok)
		}
	}
	for _, i := range []uint64{0, size / 2, size - 1} {
		e := storetest.BenchEntry(i, tag)
		if got, err := s.ByLeafHash(ctx, e.LeafHash); err != nil || got != i {
			t.Errorf("ByLeafHash(leaf of entry %d) = %d, %v", i, got, err)
		}
		got, err := s.Sample(ctx, e.Sample)
		if err != nil || len(got) == 0 || got[0] != i/8*8 {
			t.Errorf("Sample(sample of entry %d) = %v, %v, want indexes from %d", i, got, err, i/8*8)
		}
	}
	if _, err := s.ByLeafHash(ctx, absent.LeafHash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ByLeafHash(absent leaf) error = %v, want ErrNotFound", err)
	}
}

// TestIndexReopen: a Store reopened on its index directory finds the
// index at the log's size (nothing re-read), and lookups answer.
func TestIndexReopen(t *testing.T) {
	dsn, dir := pgtest.DSN(t), t.TempDir()
	s := openDir(t, dsn, dir)
	var g storetest.BenchLog
	g.MustAppend(t, s, 0, "genesis")
	g.MustAppend(t, s, 100, "a")
	g.MustAppend(t, s, 50, "a")
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error: %v", err)
	}
	s = openDir(t, dsn, dir)
	if s.idx.temp {
		t.Fatalf("reopened store keeps a temporary index, want the one under %s", dir)
	}
	if wm := s.idx.disk.Load().Watermark(); wm != 150 {
		t.Errorf("reopened index watermark = %d, want 150 (Close writes the index)", wm)
	}
	checkLookups(t, s, 150, "a")
}

// TestIndexOtherServer is two servers on one database, each with its own
// index: what one appends the other finds, and the other's Append refuses
// a duplicate of it, however its index lagged.
func TestIndexOtherServer(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a := openDir(t, dsn, t.TempDir())
	b := openDir(t, dsn, t.TempDir())
	var g storetest.BenchLog
	g.MustAppend(t, a, 0, "genesis")
	g.MustAppend(t, a, 40, "a")
	checkLookups(t, b, 40, "a") // b catches up for a lookup

	g.MustAppend(t, a, 10, "a") // b has not seen these
	dup := g.Batch(2, "b")
	dup.Entries[1].Identity = storetest.BenchEntry(45, "a").Identity
	err := b.Append(ctx, dup)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Append(batch repeating the identity of entry 45, appended by another server) error = %v, want ErrConflict", err)
	}
	g.MustAppend(t, b, 5, "a")
	checkLookups(t, a, 55, "a")
	checkLookups(t, b, 55, "a")
}

// TestIndexLockedDir: a second Store given the directory another has open
// keeps a temporary index, built on first use and removed at Close.
func TestIndexLockedDir(t *testing.T) {
	dsn, dir := pgtest.DSN(t), t.TempDir()
	a := openDir(t, dsn, dir)
	var g storetest.BenchLog
	g.MustAppend(t, a, 0, "genesis")
	g.MustAppend(t, a, 30, "a")
	b := openDir(t, dsn, dir)
	if !b.idx.temp || b.idx.dir != "" {
		t.Fatalf("second store on a locked directory: temp %v, dir %q; want a temporary index not yet built", b.idx.temp, b.idx.dir)
	}
	checkLookups(t, b, 30, "a")
	tmp := b.idx.dir
	if tmp == "" || tmp == dir {
		t.Fatalf("temporary index in %q", tmp)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close() error: %v", err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary index %s after Close: %v, want it removed", tmp, err)
	}
}

// TestIndexRestoredDatabase: an index built for a longer log (the
// database was restored from an older backup, then grew differently) is
// found out at Open and rebuilt, so no lookup answers from it.
func TestIndexRestoredDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tt := range []struct {
		name   string
		regrow int // entries appended, with another tag, after the restore
	}{
		{"shorter", 0},
		{"regrown past the index", 30},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pgtest.DSN(t)
			s := openDir(t, dsn, dir)
			var g storetest.BenchLog
			g.MustAppend(t, s, 0, "genesis")
			g.MustAppend(t, s, 10, "a")
			old := g
			g.MustAppend(t, s, 10, "a")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// The "restore": back to the first 10 entries.
			pgtest.Exec(t, dsn, "DELETE FROM entries WHERE idx >= 10", "DELETE FROM checkpoints WHERE size > 10",
				"UPDATE head SET size = 10, root = (SELECT root FROM checkpoints WHERE size = 10)")
			g = old
			if tt.regrow > 0 {
				s := openDir(t, dsn, t.TempDir())
				g.MustAppend(t, s, tt.regrow, "b")
				s.Close()
			}
			s = openDir(t, dsn, dir)
			if got := s.idx.indexed.Load(); got != g.Size {
				t.Errorf("index after the restore holds %d entries, want %d", got, g.Size)
			}
			for i := uint64(10); i < 20; i++ {
				e := storetest.BenchEntry(i, "a")
				if found, err := s.ByIdentity(ctx, []store.Hash{e.Identity}); err != nil || len(found) != 0 {
					t.Errorf("ByIdentity(entry %d before the restore) = %v, %v, want none", i, found, err)
				}
			}
			for i := uint64(10); i < g.Size; i++ {
				e := storetest.BenchEntry(i, "b")
				if got, err := s.ByLeafHash(ctx, e.LeafHash); err != nil || got != i {
					t.Errorf("ByLeafHash(entry %d after the restore) = %d, %v", i, got, err)
				}
			}
		})
	}
}

// schemaV1 is the entries table and indexes of schema version 1, which
// TestMigrateV1 recreates.
var schemaV1 = []string{
	"ALTER TABLE entries ADD CONSTRAINT entries_identity_key UNIQUE (identity)",
	"CREATE INDEX entries_leaf_hash ON entries (leaf_hash, idx)",
	"CREATE INDEX entries_sample ON entries (sample, idx)",
	"DROP TABLE aggregates",
	"UPDATE schema_version SET version = 1",
}

// TestMigrateV1: Open turns a log of schema version 1 into version 2
// (dropping the database indexes the lookup index replaces) and finds
// its entries.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := openDir(t, dsn, t.TempDir())
	var g storetest.BenchLog
	g.MustAppend(t, s, 0, "genesis")
	g.MustAppend(t, s, 20, "a")
	s.Close()
	pgtest.Exec(t, dsn, schemaV1...)
	if n := pgtest.QueryInt(t, dsn, "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'entries'"); n != 4 {
		t.Fatalf("version 1 schema has %d indexes on entries, want 4", n)
	}

	s = openDir(t, dsn, t.TempDir())
	if v := pgtest.QueryInt(t, dsn, "SELECT version FROM schema_version"); v != schemaVersion {
		t.Errorf("schema version after migration = %d, want %d", v, schemaVersion)
	}
	if n := pgtest.QueryInt(t, dsn, "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'entries'"); n != 1 {
		t.Errorf("after migration entries has %d indexes, want 1 (the primary key)", n)
	}
	checkLookups(t, s, 20, "a")
	g.MustAppend(t, s, 5, "a")
	if err := s.SaveAggregate(ctx, "x", 25, []byte("y")); err != nil {
		t.Errorf("SaveAggregate() after migration error: %v", err)
	}
	// And again: a migrated schema opens as it is.
	s.Close()
	openDir(t, dsn, filepath.Join(t.TempDir(), "again"))
}

func TestAggregates(t *testing.T) {
	storetest.RunAggregates(t,
		func(t *testing.T) store.Store { return openTemp(t) },
		func(t *testing.T, old store.Store) store.Store {
			dsn := old.(*Store).dsn
			if err := old.Close(); err != nil {
				t.Fatalf("Close() error: %v", err)
			}
			return openDSN(t, dsn)
		})
}

// TestIndexCatchUpPages: an index catching up reads the entries a page
// at a time (a LIMIT keeps PostgreSQL on the primary key) and goes on
// until the end, whatever the page size.
func TestIndexCatchUpPages(t *testing.T) {
	defer func(n uint64) { catchUpRows = n }(catchUpRows)
	catchUpRows = 7
	dsn := pgtest.DSN(t)
	a := openDir(t, dsn, t.TempDir())
	var g storetest.BenchLog
	g.MustAppend(t, a, 0, "genesis")
	g.MustAppend(t, a, 40, "a")
	g.MustAppend(t, a, 9, "a")
	b := openDir(t, dsn, t.TempDir()) // catches up 49 entries, 7 at a time
	if n := b.idx.indexed.Load(); n != 49 {
		t.Fatalf("a new index caught up to %d entries, want 49", n)
	}
	checkLookups(t, b, 49, "a")
}
