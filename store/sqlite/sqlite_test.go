package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/storetest"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "custody.db"))
	if err != nil {
		t.Fatalf("Open() error: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) store.Store { return openTemp(t) },
		func(t *testing.T, old store.Store) store.Store {
			path := old.(*Store).path
			if err := old.Close(); err != nil {
				t.Fatalf("Close() error: %v", err)
			}
			s, err := Open(path)
			if err != nil {
				t.Fatalf("Open(%s) again error: %v", path, err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
}

// TestPragmas checks the settings that make Append durable, on the writer's
// connection, and that readers cannot write.
func TestPragmas(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	for _, p := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"},
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
		{"cache_size", "-262144"},
		{"temp_store", "2"},
		{"wal_autocheckpoint", "10000"},
	} {
		var got string
		if err := s.w.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s error: %v", p.pragma, err)
		}
		if got != p.want {
			t.Errorf("writer: PRAGMA %s = %q, want %q", p.pragma, got, p.want)
		}
	}
	var mode string
	if err := s.r.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("reader: PRAGMA journal_mode = %q, %v, want wal", mode, err)
	}
	if _, err := s.r.ExecContext(ctx, "DELETE FROM checkpoints"); err == nil {
		t.Errorf("reader: DELETE succeeded, want an error (query_only)")
	}
}

// TestCheckPragmas checks that Open's check fails on a connection that is
// not durable.
func TestCheckPragmas(t *testing.T) {
	for _, tt := range []struct{ dsn, want string }{
		{"?_journal_mode=DELETE&_synchronous=FULL", `journal_mode is "delete", want "wal"`},
		{"?_journal_mode=WAL&_synchronous=NORMAL", "synchronous is 1, want 2 (FULL)"},
	} {
		db, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "x.db")+tt.dsn)
		if err != nil {
			t.Fatal(err)
		}
		err = checkPragmas(context.Background(), db)
		db.Close()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("checkPragmas(%s) = %v, want an error containing %q", tt.dsn, err, tt.want)
		}
	}
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "custody.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var version int
	if err := s.r.QueryRow("SELECT version FROM schema_version").Scan(&version); err != nil || version != schemaVersion {
		t.Errorf("schema_version = %d, %v, want %d", version, err, schemaVersion)
	}
	if _, err := s.w.Exec("UPDATE schema_version SET version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	_, err = Open(path)
	if err == nil {
		t.Fatal("Open(database of schema version 99) = nil error")
	}
	for _, want := range []string{path, "schema version is 99, want 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open(database of schema version 99) = %v, want it to contain %q", err, want)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()

	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite3", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE things (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	noRow := filepath.Join(dir, "norow.db")
	s, err := Open(noRow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.Exec("DELETE FROM schema_version"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat("not a database\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ path, want string }{
		{"", "empty path"},
		{dir, dir + ": is a directory"},
		{filepath.Join(dir, "missing", "custody.db"), "directory " + filepath.Join(dir, "missing") + " does not exist"},
		{filepath.Join(text, "custody.db"), text + " is not a directory"},
		{other, other + ": the database has tables but no schema_version"},
		{noRow, noRow + ": schema_version table has no row"},
		{text, text + ": reading journal_mode: file is not a database"},
	} {
		s, err := Open(tt.path)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) = nil error, want one containing %q", tt.path, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tt.path, err, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created the missing directory")
	}
}

// TestOpenOddName checks that the path is not taken for URI syntax.
func TestOpenOddName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log?mode=ro&x=%41#1.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q) error: %v", path, err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Open(%q) did not create that file: %v", path, err)
	}
}

// TestTwoStoresOneFile checks that two Stores on one file (two processes,
// say) cannot fork the log: their BEGIN IMMEDIATE transactions serialise and
// the compare-and-swap refuses the loser.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "custody.db")
	var stores [2]*Store
	for i := range stores {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	ctx := context.Background()
	g := newBenchLog()
	if err := stores[0].Append(ctx, g.genesis()); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		batches := [2]store.Batch{g.batch(50, "a"), g.batch(60, "b")}
		var errs [2]error
		var wg sync.WaitGroup
		for i := range stores {
			wg.Go(func() { errs[i] = stores[i].Append(ctx, batches[i]) })
		}
		wg.Wait()
		switch {
		case errs[0] == nil && errs[1] == nil:
			t.Fatalf("round %d: both stores appended", round)
		case errs[0] == nil && errors.Is(errs[1], store.ErrConflict):
			g.apply(batches[0])
		case errs[1] == nil && errors.Is(errs[0], store.ErrConflict):
			g.apply(batches[1])
		default:
			t.Fatalf("round %d: Append() = %v, %v; want nil and ErrConflict", round, errs[0], errs[1])
		}
		for i, s := range stores {
			c, err := s.Latest(ctx)
			if err != nil || c.Size != g.size {
				t.Fatalf("round %d: store %d: Latest() = size %d, %v, want size %d", round, i, c.Size, err, g.size)
			}
		}
	}
}

// TestErrorMessages checks that errors say what failed on what input.
func TestErrorMessages(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	g := newBenchLog()
	if err := s.Append(ctx, g.genesis()); err != nil {
		t.Fatal(err)
	}
	b := g.batch(10, "x")
	if err := s.Append(ctx, b); err != nil {
		t.Fatal(err)
	}
	g.apply(b)

	dup := g.batch(10, "x")
	dup.Entries[4].Identity = b.Entries[2].Identity
	bigTile := g.batch(10, "x")
	bigTile.Tiles[0].Data = make([]byte, 257*32)
	for _, tt := range []struct {
		b    store.Batch
		want string
	}{
		{dup, fmt.Sprintf("sqlite: appending batch at size 10: entry 14 has identity %x, already the identity of entry 2: conflict", b.Entries[2].Identity)},
		{g.batch(10, "x"), ""},
		{g.batch(10, "x"), "sqlite: appending batch at size 10: the latest checkpoint is size 20"},
		{bigTile, "tile 0/0 has 8224 bytes, want 1 to 256 hashes"},
	} {
		err := s.Append(ctx, tt.b)
		if tt.want == "" {
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Append() = %v, want an error containing %q", err, tt.want)
		}
	}
	if _, err := s.Tile(ctx, 3, 7); err == nil || err.Error() != "sqlite: reading tile 3/7: not found" {
		t.Errorf("Tile(3, 7) = %v, want %q", err, "sqlite: reading tile 3/7: not found")
	}
}
