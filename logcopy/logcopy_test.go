package logcopy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custodylog/custody/fsck"
	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/loadgen"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/postgres"
	"github.com/custodylog/custody/store/postgres/pgtest"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/store/sqlite/sqlitetest"
	"golang.org/x/mod/sumdb/note"
)

func openSQLite(t *testing.T, path string) store.Store {
	t.Helper()
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// newLog makes a SQLite log of n entries prefilled in batches of batch and
// returns its path and key; the store is closed.
func newLog(t *testing.T, n uint64, batch int) (string, note.Verifier) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "src.db")
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sk, vk, _ := note.GenerateKey(rand.Reader, "logcopy.test/log")
	s, _ := note.NewSigner(sk)
	v, _ := note.NewVerifier(vk)
	if err := log.Create(ctx, st, s); err != nil {
		t.Fatal(err)
	}
	if _, err := loadgen.Prefill(ctx, st, s, v, n, loadgen.PrefillOptions{Batch: batch}); err != nil {
		t.Fatal(err)
	}
	return path, v
}

// TestCopy copies a log that fills a level-1 tile into SQLite and into
// PostgreSQL: the summary counts what the source holds, the destinations
// pass fsck, and every checkpoint note is the source's byte for byte.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	const n = 65536 + 100
	path, v := newLog(t, n, 13000)
	src := openSQLite(t, path)
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var dst store.Store
			if backend == "sqlite" {
				dst = openSQLite(t, filepath.Join(t.TempDir(), "dst.db"))
			} else {
				pg, err := postgres.Open(ctx, pgtest.DSN(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pg.Close() })
				dst = pg
			}
			var phases []string
			sum, err := Copy(ctx, src, dst, Options{From: "src", To: backend, Progress: func(p string, done, total uint64) {
				if len(phases) == 0 || phases[len(phases)-1] != p {
					phases = append(phases, p)
				}
				if total != n || done > n {
					t.Errorf("progress %s %d of %d, want at most %d of %d", p, done, total, n, n)
				}
			}})
			if err != nil {
				t.Fatalf("Copy() error: %v", err)
			}
			latest, _ := src.Latest(ctx)
			if sum.Entries != n || sum.Checkpoints != 7 || sum.Tiles != tiles.TileCount(n) || sum.Size != n || sum.Root != b64(latest.Root) || !sum.Verified || sum.From != "src" || sum.To != backend {
				t.Errorf("summary %+v", sum)
			}
			if len(phases) != 2 || phases[0] != PhaseCopy || phases[1] != PhaseVerify {
				t.Errorf("progress phases %q", phases)
			}
			rep, err := fsck.Check(ctx, dst, v, fsck.Options{})
			if err != nil || len(rep.Problems) != 0 || rep.Tiles != sum.Tiles {
				t.Errorf("fsck of the copy: %v, %+v", err, rep)
			}
			err = store.EachCheckpoint(ctx, src, ^uint64(0), func(c store.Checkpoint) error {
				d, err := dst.Checkpoint(ctx, c.Size)
				if err != nil || !bytes.Equal(d.Note, c.Note) {
					t.Errorf("checkpoint %d of the copy: %v, note differs", c.Size, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// A second copy into the same destination is refused.
			_, err = Copy(ctx, src, dst, Options{})
			var f interface {
				Hint() string
				ExitCode() int
			}
			if !errors.Is(err, ErrNotEmpty) {
				t.Errorf("Copy() into a full destination = %v, want ErrNotEmpty", err)
			} else if !errors.As(err, &f) || !strings.HasPrefix(f.Hint(), "copy into a new, empty store") || f.ExitCode() != 3 {
				t.Errorf("Copy() into a full destination: %v, want the hint to copy into an empty store and exit code 3", err)
			}
		})
	}
}

// TestCopyRefuses: a damaged source is refused before its damage is
// committed, and an empty source is not a log.
func TestCopyRefuses(t *testing.T) {
	ctx := context.Background()
	path, _ := newLog(t, 600, 200)
	sqlitetest.Exec(t, path, "UPDATE entries SET leaf_hash = CAST(zeroblob(32) AS BLOB) WHERE idx = 450")
	src := openSQLite(t, path)
	dst := openSQLite(t, filepath.Join(t.TempDir(), "dst.db"))
	if _, err := Copy(ctx, src, dst, Options{}); !errors.Is(err, ErrSourceDamaged) {
		t.Fatalf("Copy() of a damaged source = %v, want ErrSourceDamaged", err)
	}
	// The checkpoints before the damage were copied, the one covering it not.
	if cp, err := dst.Latest(ctx); err != nil || cp.Size != 400 {
		t.Errorf("destination after the refusal: size %d, %v; want the last good checkpoint, 400", cp.Size, err)
	}

	empty := openSQLite(t, filepath.Join(t.TempDir(), "empty.db"))
	if _, err := Copy(ctx, empty, openSQLite(t, filepath.Join(t.TempDir(), "dst2.db")), Options{}); !errors.Is(err, ErrNoLog) {
		t.Errorf("Copy() of an empty store = %v, want ErrNoLog", err)
	}
}
