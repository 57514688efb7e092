package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
		{"cache_size", "-16384"},
		{"temp_store", "2"},
		{"wal_autocheckpoint", "1000"},
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
	for _, want := range []string{path, fmt.Sprintf("schema version is 99, want %d", schemaVersion)} {
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
	g := new(storetest.BenchLog)
	g.MustAppend(t, stores[0], 0, "genesis")
	for round := range 10 {
		batches := [2]store.Batch{g.Batch(50, "a"), g.Batch(60, "b")}
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
			g.Apply(batches[0])
		case errs[1] == nil && errors.Is(errs[0], store.ErrConflict):
			g.Apply(batches[1])
		default:
			t.Fatalf("round %d: Append() = %v, %v; want nil and ErrConflict", round, errs[0], errs[1])
		}
		for i, s := range stores {
			c, err := s.Latest(ctx)
			if err != nil || c.Size != g.Size {
				t.Fatalf("round %d: store %d: Latest() = size %d, %v, want size %d", round, i, c.Size, err, g.Size)
			}
		}
	}
}

// TestErrorMessages checks that errors say what failed on what input.
func TestErrorMessages(t *testing.T) {
	storetest.CheckErrorMessages(t, openTemp(t), "sqlite")
}

// checkIndexed fails t unless the indexes of s (on disk or in memory)
// hold the first size entries, each exactly once under each of its keys.
func checkIndexed(t *testing.T, s *Store, size uint64) {
	t.Helper()
	if got := s.idx.indexed.Load(); got != size {
		t.Errorf("indexed = %d, want %d", got, size)
	}
	es, err := s.Entries(context.Background(), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	once := func(what string, e store.Entry, cands []uint64, err error) {
		t.Helper()
		if n := countOf(cands, e.Index); err != nil || n != 1 {
			t.Errorf("%s index: entry %d found %d times (%v)", what, e.Index, n, err)
		}
	}
	for _, e := range es {
		c, err := s.idx.identityCandidates(nil, e.Identity[:])
		once("identity", e, c, err)
		c, err = s.idx.leafCandidates(nil, e.LeafHash[:])
		once("leaf hash", e, c, err)
		c, err = s.idx.sampleCandidates(nil, []byte(e.Sample))
		once("sample", e, c, err)
	}
}

func countOf(xs []uint64, v uint64) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}

// collide returns h with bits of its last byte flipped: the same index key
// (the first 8 bytes), another hash for each nonzero bits.
func collide(h store.Hash, bits byte) store.Hash {
	h[31] ^= bits
	return h
}

// TestPrefixCollisions checks that hashes that share their first 8 bytes
// (the in-memory index key) are told apart by the stored row.
func TestPrefixCollisions(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	g := new(storetest.BenchLog)
	g.MustAppend(t, s, 0, "genesis")
	b := g.MustAppend(t, s, 10, "a")
	x := b.Entries[3] // entry 3

	// A colliding but different identity goes in, in a later batch and
	// twice within one batch; so do colliding leaf hashes.
	c := g.Batch(10, "b")
	c.Entries[0].Identity = collide(x.Identity, 1)
	c.Entries[5].Identity = collide(x.Identity, 2)
	c.Entries[6].Identity = collide(x.Identity, 4)
	c.Entries[7].LeafHash = collide(x.LeafHash, 1)
	if err := s.Append(ctx, c); err != nil {
		t.Fatalf("Append(colliding identities) error: %v", err)
	}
	g.Apply(c)

	ids := []store.Hash{x.Identity, collide(x.Identity, 1), collide(x.Identity, 2), collide(x.Identity, 3), collide(x.Identity, 4), collide(x.Identity, 8)}
	got, err := s.ByIdentity(ctx, ids)
	want := map[store.Hash]uint64{ids[0]: 3, ids[1]: 10, ids[2]: 15, ids[4]: 16}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("ByIdentity(colliding identities) = %v, %v, want %v", got, err, want)
	}
	if got, err := s.ByLeafHash(ctx, x.LeafHash); err != nil || got != 3 {
		t.Errorf("ByLeafHash(leaf hash of entry 3) = %d, %v, want 3", got, err)
	}
	if got, err := s.ByLeafHash(ctx, c.Entries[7].LeafHash); err != nil || got != 17 {
		t.Errorf("ByLeafHash(colliding leaf hash of entry 17) = %d, %v, want 17", got, err)
	}
	if got, err := s.ByLeafHash(ctx, collide(x.LeafHash, 2)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ByLeafHash(absent colliding leaf hash) = %d, %v, want ErrNotFound", got, err)
	}

	// An exact duplicate is refused even among colliding candidates, and
	// nothing is written.
	for _, dup := range []store.Hash{x.Identity, c.Entries[5].Identity, c.Entries[6].Identity} {
		d := g.Batch(10, "dup")
		d.Entries[9].Identity = dup
		err := s.Append(ctx, d)
		if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), fmt.Sprintf("entry 29 has identity %x", dup)) {
			t.Errorf("Append(duplicate identity %x) = %v, want ErrConflict naming entry 29", dup, err)
		}
	}
	if cp, err := s.Latest(ctx); err != nil || cp.Size != 20 {
		t.Fatalf("Latest() = size %d, %v, want 20", cp.Size, err)
	}
	checkIndexed(t, s, 20)

	// A sample whose key collides with another's (forced here by pointing
	// its chain at an entry of another sample) finds only its own entries.
	// The collision is planted in the in-memory index of a second Store of
	// the same file (the first owns the on-disk index).
	s2, err := Open(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.idx.disk != nil {
		t.Fatal("a second Store of one file opened the on-disk index")
	}
	if _, err := s2.Sample(ctx, "S-absent"); err != nil { // builds its indexes
		t.Fatal(err)
	}
	s = s2
	s.idx.samples.heads.Add(sampleKey([]byte("S-absent")), 12)
	if got, err := s.Sample(ctx, "S-absent"); err != nil || len(got) != 0 {
		t.Errorf("Sample(colliding absent sample) = %v, %v, want empty", got, err)
	}
	e := g.Batch(3, "c")
	for i := range e.Entries {
		e.Entries[i].Sample = "S-absent"
	}
	if err := s.Append(ctx, e); err != nil {
		t.Fatal(err)
	}
	g.Apply(e)
	if got, err := s.Sample(ctx, "S-absent"); err != nil || !slices.Equal(got, []uint64{20, 21, 22}) {
		t.Errorf("Sample(colliding sample) = %v, %v, want [20 21 22]", got, err)
	}
	if got, err := s.Sample(ctx, c.Entries[2].Sample); err != nil || !slices.Contains(got, 12) || slices.Contains(got, 20) {
		t.Errorf("Sample(%q) = %v, %v, want entry 12 and not 20", c.Entries[2].Sample, got, err)
	}
}

// TestReopenRebuildsIndexes checks that Open indexes the entries already in
// the file.
func TestReopenRebuildsIndexes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "custody.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	g := new(storetest.BenchLog)
	g.MustAppend(t, s, 0, "genesis")
	var all []store.Entry
	for _, n := range []int{5000, 1, 3000} {
		b := g.MustAppend(t, s, n, "reopen")
		all = append(all, b.Entries...)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkIndexed(t, s, g.Size)
	checkLookups(t, s, all)

	// The reopened store refuses a known identity and takes new entries.
	d := g.Batch(5, "reopen")
	d.Entries[2].Identity = all[4321].Identity
	if err := s.Append(ctx, d); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Append(identity of entry 4321) after reopening = %v, want ErrConflict", err)
	}
	b := g.MustAppend(t, s, 5, "reopen")
	all = append(all, b.Entries...)
	checkIndexed(t, s, g.Size)
	checkLookups(t, s, all)
}

// checkLookups fails t unless ByIdentity, ByLeafHash and Sample find the
// entries, which are the whole log.
func checkLookups(t *testing.T, s *Store, all []store.Entry) {
	t.Helper()
	ctx := context.Background()
	ids := make([]store.Hash, len(all))
	wantIDs := make(map[store.Hash]uint64, len(all))
	wantSamples := make(map[string][]uint64)
	for i, e := range all {
		ids[i] = e.Identity
		wantIDs[e.Identity] = e.Index
		wantSamples[e.Sample] = append(wantSamples[e.Sample], e.Index)
	}
	if got, err := s.ByIdentity(ctx, ids); err != nil || !maps.Equal(got, wantIDs) {
		t.Errorf("ByIdentity(all %d identities) = %d found, %v, want all", len(ids), len(got), err)
	}
	for i := 0; i < len(all); i += 97 {
		if got, err := s.ByLeafHash(ctx, all[i].LeafHash); err != nil || got != all[i].Index {
			t.Errorf("ByLeafHash(leaf hash of entry %d) = %d, %v", all[i].Index, got, err)
		}
		want := wantSamples[all[i].Sample]
		if got, err := s.Sample(ctx, all[i].Sample); err != nil || !slices.Equal(got, want) {
			t.Errorf("Sample(%q) = %v, %v, want %v", all[i].Sample, got, err, want)
		}
	}
}

// TestTwoStoresLookups checks that a Store finds the entries another Store
// on the same file appended, in its lookups and in Append's uniqueness
// check, while lookups run concurrently.
func TestTwoStoresLookups(t *testing.T) {
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
	a := stores[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := new(storetest.BenchLog)
	g.MustAppend(t, a, 0, "genesis")

	// Readers of both stores look up an identity that is never there, so
	// their refreshes race with the appends.
	var readers sync.WaitGroup
	for _, s := range stores {
		for range 2 {
			readers.Go(func() {
				for ctx.Err() == nil {
					if _, err := s.ByIdentity(ctx, []store.Hash{{1}}); err != nil && ctx.Err() == nil {
						t.Errorf("ByIdentity() error: %v", err)
						return
					}
				}
			})
		}
	}

	var all []store.Entry
	for round := range 20 {
		writer, other := stores[round%2], stores[1-round%2]
		// other's identity, refused by writer.
		if len(all) > 0 {
			d := g.Batch(100, "dup")
			d.Entries[50].Identity = all[len(all)-7].Identity
			if err := writer.Append(ctx, d); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("round %d: Append(identity appended by the other store) = %v, want ErrConflict", round, err)
			}
		}
		batch := g.MustAppend(t, writer, 300+round, fmt.Sprintf("round %d", round))
		all = append(all, batch.Entries...)
		last := batch.Entries[len(batch.Entries)-1]
		if got, err := other.ByIdentity(ctx, []store.Hash{last.Identity}); err != nil || got[last.Identity] != last.Index {
			t.Fatalf("round %d: other store: ByIdentity(identity of entry %d) = %v, %v", round, last.Index, got, err)
		}
	}
	cancel()
	readers.Wait()
	for i, s := range stores {
		t.Run(fmt.Sprint("store ", i), func(t *testing.T) {
			checkLookups(t, s, all)
			checkIndexed(t, s, g.Size)
		})
	}
}

// TestIndexIsKeptAndChecked checks the on-disk index: a clean reopen reads
// no entries; a database restored from an older copy (fewer entries than
// the index holds) or replaced by another log gets its index rebuilt, and
// lookups stay exact in each case.
func TestIndexIsKeptAndChecked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "custody.db")
	copyDB := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		for _, sfx := range []string{"-wal", "-shm"} {
			os.Remove(to + sfx)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	g := new(storetest.BenchLog)
	g.MustAppend(t, s, 0, "genesis")
	var all []store.Entry
	for range 3 {
		all = append(all, g.MustAppend(t, s, 700, "kept").Entries...)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	copyDB(path, filepath.Join(dir, "old.db")) // a backup at 2,100 entries

	// A clean reopen: the index holds every entry already.
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	if s.idx.disk == nil || s.idx.disk.Watermark() != g.Size {
		t.Fatalf("after a clean close the index's watermark is %v, want %d", s.idx.disk, g.Size)
	}
	checkIndexed(t, s, g.Size)
	newer := g.MustAppend(t, s, 500, "newer").Entries
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Restored from the backup: the index holds 500 entries the log does
	// not; it is rebuilt, and an identity of those 500 is free again.
	copyDB(filepath.Join(dir, "old.db"), path)
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	checkIndexed(t, s, 2100)
	checkLookups(t, s, all)
	if got, err := s.ByIdentity(ctx, []store.Hash{newer[0].Identity}); err != nil || len(got) != 0 {
		t.Fatalf("ByIdentity(an entry the restored log lacks) = %v, %v", got, err)
	}
	g.Size, g.Prev = 2100, nil
	if cp, err := s.Latest(ctx); err == nil {
		g.Prev = &cp
	}
	regrown := g.MustAppend(t, s, 10, "regrown").Entries
	checkIndexed(t, s, 2110)
	checkLookups(t, s, append(all, regrown...))
	s.Close()

	// Replaced by another log of the same size: rebuilt too.
	other := filepath.Join(dir, "other.db")
	o, err := Open(other)
	if err != nil {
		t.Fatal(err)
	}
	g2 := new(storetest.BenchLog)
	g2.MustAppend(t, o, 0, "genesis")
	var oall []store.Entry
	for range 3 {
		oall = append(oall, g2.MustAppend(t, o, 700, "other").Entries...)
	}
	o.Close()
	copyDB(other, path)
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkIndexed(t, s, 2100)
	checkLookups(t, s, oall)
	if got, _ := s.ByIdentity(ctx, []store.Hash{all[0].Identity}); len(got) != 0 {
		t.Fatalf("the replaced log's index still finds the old log's entries: %v", got)
	}
}
