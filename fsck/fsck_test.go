package fsck

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/loadgen"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/store/sqlite/sqlitetest"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// newLog makes a SQLite log of n prefilled entries (in batches of batch,
// each with its checkpoint) and returns its path, key and latest
// checkpoint. The store is closed.
func newLog(t *testing.T, n uint64, batch int) (string, note.Verifier, store.Checkpoint) {
	t.Helper()
	path, _, v, cp := newSignedLog(t, n, batch)
	return path, v, cp
}

// newSignedLog is newLog, also returning the log's signer.
func newSignedLog(t *testing.T, n uint64, batch int) (string, note.Signer, note.Verifier, store.Checkpoint) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "custody.db")
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sk, vk, _ := note.GenerateKey(rand.Reader, "fsck.test/log")
	s, _ := note.NewSigner(sk)
	v, _ := note.NewVerifier(vk)
	if err := log.Create(ctx, st, s); err != nil {
		t.Fatal(err)
	}
	cp, err := loadgen.Prefill(ctx, st, s, v, n, loadgen.PrefillOptions{Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	return path, s, v, cp
}

func check(t *testing.T, path string, v note.Verifier, opts Options) *Report {
	t.Helper()
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := Check(context.Background(), st, v, opts)
	if err != nil {
		t.Fatalf("Check() error: %v", err)
	}
	return rep
}

func wantProblem(t *testing.T, rep *Report, kind Kind, where, detail string) {
	t.Helper()
	for _, p := range rep.Problems {
		if p.Kind == kind && p.Where == where && strings.Contains(p.Detail, detail) {
			return
		}
	}
	t.Errorf("no problem %s %s: …%s… among %+v", kind, where, detail, rep.Problems)
}

// TestCheckSound checks a sound log that fills a level-1 tile: no
// problems, and every entry, tile and checkpoint counted.
func TestCheckSound(t *testing.T) {
	const n = 65536 + 300
	path, v, _ := newLog(t, n, 20000)
	rep := check(t, path, v, Options{})
	if len(rep.Problems) != 0 {
		t.Fatalf("problems in a sound log: %+v", rep.Problems)
	}
	if rep.Entries != n || rep.Tiles != tiles.TileCount(n) || rep.Checkpoints != 5 {
		t.Errorf("report counts %d entries, %d tiles, %d checkpoints; want %d, %d, 5", rep.Entries, rep.Tiles, rep.Checkpoints, n, tiles.TileCount(n))
	}
	if rep.Problems == nil {
		t.Error("Problems is nil, want empty (JSON [] rather than null)")
	}
}

// TestCheckFindsDamage damages the tiles of a log behind the store's back
// and checks that each damage is reported with its kind and place.
func TestCheckFindsDamage(t *testing.T) {
	const n = 65536 + 300
	bad := sha256.Sum256([]byte("not a node hash"))
	for _, tt := range []struct {
		name          string
		q             string
		args          []any
		kind          Kind
		where, detail string
	}{
		{"a hash of a full level-1 tile changed", "UPDATE tiles SET data = CAST(substr(data, 1, 32*7) || ? || substr(data, 32*8+1) AS BLOB) WHERE level = 1 AND idx = 0", []any{bad[:]},
			KindTile, "tile/1/000", "hash 7 differs"},
		{"a partial level-0 tile changed", "UPDATE tiles SET data = CAST(? || substr(data, 33) AS BLOB) WHERE level = 0 AND idx = 257", []any{bad[:]},
			KindTile, "tile/0/257", "hash 0 differs"},
		{"a full tile missing", "DELETE FROM tiles WHERE level = 0 AND idx = 3", nil,
			KindTileMissing, "tile/0/003", "needs 256 hashes"},
		{"a tile no entry accounts for", "INSERT INTO tiles (level, idx, data) VALUES (0, 999, ?)", []any{bad[:]},
			KindTileExtra, "tile/0/999", "stored (1 hashes)"},
		{"a tile too wide", "UPDATE tiles SET data = CAST(data || ? AS BLOB) WHERE level = 1 AND idx = 1", []any{bad[:]},
			KindTileWidth, "tile/1/001", "stored width 2, but the 65836 entries give only 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, v, _ := newLog(t, n, 30000)
			sqlitetest.Exec(t, path, tt.q, tt.args...)
			wantProblem(t, check(t, path, v, Options{}), tt.kind, tt.where, tt.detail)
		})
	}
}

// TestCheckKnownCheckpoints: checkpoints kept elsewhere catch a store that
// is consistent with itself but was rolled back or rewritten.
func TestCheckKnownCheckpoints(t *testing.T) {
	path, v, cp := newLog(t, 600, 200)
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := st.Checkpoint(context.Background(), 400)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	open := func(c store.Checkpoint) verify.Checkpoint {
		t.Helper()
		vc, _, err := verify.OpenCheckpoint(c.Note, v.Name(), note.VerifierList(v))
		if err != nil {
			t.Fatal(err)
		}
		return vc
	}
	if rep := check(t, path, v, Options{Known: []verify.Checkpoint{open(mid), open(cp)}}); len(rep.Problems) != 0 {
		t.Fatalf("problems with the log's own checkpoints: %+v", rep.Problems)
	}
	later := open(cp)
	later.Size += 10
	forked := open(mid)
	forked.Root = sha256.Sum256([]byte("another tree"))
	rep := check(t, path, v, Options{Known: []verify.Checkpoint{later, forked}})
	wantProblem(t, rep, KindRollback, fmt.Sprintf("checkpoint %d", later.Size), "rolled back or truncated")
	wantProblem(t, rep, KindFork, "checkpoint 400", "stored entries give")
}

// noLister hides the store's TileLister.
type noLister struct{ store.Store }

func TestCheckNeedsTileLister(t *testing.T) {
	path, v, _ := newLog(t, 10, 10)
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := Check(context.Background(), noLister{st}, v, Options{}); err == nil || !strings.Contains(err.Error(), "TileLister") {
		t.Errorf("Check(a store without TileLister) = %v, want an error naming TileLister", err)
	}
}
