// Package witnessdb keeps a witness's state (witness.StateStore) in a SQLite
// file: for each log, by origin, the latest checkpoint the witness cosigned,
// with its size and root hash.
//
// The file is opened in WAL mode with synchronous=FULL, so a state change is
// on disk when CompareAndSwap returns. Every change is one compare-and-swap
// statement on the previous size and root, so processes sharing the file
// (and goroutines sharing a DB) can neither roll the state back nor fork it.
//
// The format is the one custody witness serve has always written: one table,
//
//	CREATE TABLE log (
//		origin     TEXT PRIMARY KEY,
//		size       INTEGER NOT NULL,  -- the uint64 size, bit-cast to int64
//		root       BLOB NOT NULL,     -- 32 bytes
//		checkpoint BLOB NOT NULL,     -- as served by GET /<hash>/checkpoint
//		updated    INTEGER NOT NULL   -- Unix seconds of the last change
//	)
//
// so state files written before this package existed open unchanged.
package witnessdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/custodylog/custody/internal/tiles"
	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

// FileName is the name custody witness serve gives the state file inside its
// --dir.
const FileName = "witness.db"

const schema = `CREATE TABLE IF NOT EXISTS log (
	origin     TEXT PRIMARY KEY,
	size       INTEGER NOT NULL,
	root       BLOB NOT NULL,
	checkpoint BLOB NOT NULL,
	updated    INTEGER NOT NULL
)`

// DB is a witness state file opened by Open. It implements
// witness.StateStore and is safe for concurrent use.
type DB struct {
	db   *sql.DB
	path string
	now  func() time.Time // the clock of the updated column
}

// Open opens the witness state file at path, creating it (and its table) if
// it does not exist. The directory must exist. It fails if the file cannot
// be put in WAL mode with synchronous=FULL, so that a DB it returns never
// answers a compare-and-swap before it is durable.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("witnessdb: no state file path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("witnessdb: state file %q: %w", path, err)
	}
	params := url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_busy_timeout": {"5000"},
		"_txlock":       {"immediate"},
	}
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + params.Encode()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("witnessdb: opening %s: %w", abs, err)
	}
	// One connection: every statement is serialised, and the pragmas of the
	// DSN are in effect on it.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := check(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("witnessdb: opening %s: %w", abs, err)
	}
	return &DB{db: db, path: abs, now: time.Now}, nil
}

// check verifies the durability settings and creates the table if needed.
func check(db *sql.DB) error {
	ctx := context.Background()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("reading journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want \"wal\"", mode)
	}
	var syncMode int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
		return fmt.Errorf("reading synchronous: %w", err)
	}
	if syncMode != 2 {
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", syncMode)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("creating schema: %w", err)
	}
	return nil
}

// Close closes the state file.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("witnessdb: closing %s: %w", d.path, err)
	}
	return nil
}

// Get returns the size and root hash of the latest checkpoint stored for
// origin; ok is false if none was ever stored. A stored root that is not 32
// bytes long is an error (the file was damaged or edited).
func (d *DB) Get(ctx context.Context, origin string) (size uint64, root [32]byte, ok bool, err error) {
	var s int64
	var r []byte
	err = d.db.QueryRowContext(ctx, "SELECT size, root FROM log WHERE origin = ?", origin).Scan(&s, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, [32]byte{}, false, nil
	}
	if err != nil {
		return 0, [32]byte{}, false, fmt.Errorf("witnessdb: reading the state of %q from %s: %w", origin, d.path, err)
	}
	if len(r) != 32 {
		return 0, [32]byte{}, false, fmt.Errorf("witnessdb: the stored root of %q in %s is %d bytes, not 32: the file is damaged", origin, d.path, len(r))
	}
	return uint64(s), [32]byte(r), true, nil
}

// Checkpoint returns the latest checkpoint stored for origin, byte for byte
// as CompareAndSwap stored it; ok is false if none was ever stored.
func (d *DB) Checkpoint(ctx context.Context, origin string) (checkpoint []byte, ok bool, err error) {
	err = d.db.QueryRowContext(ctx, "SELECT checkpoint FROM log WHERE origin = ?", origin).Scan(&checkpoint)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("witnessdb: reading the checkpoint of %q from %s: %w", origin, d.path, err)
	}
	return checkpoint, true, nil
}

// CompareAndSwap stores (size, root, checkpoint) as origin's state if the
// stored state is still (oldSize, oldRoot); a log with no stored state counts
// as size 0 with the empty tree's root SHA-256(""). It reports whether it
// stored the new state; when it returns true the change is committed to
// disk. It returns false and no error if the stored state was another one
// (it then changes nothing). The comparison and the write are one SQLite
// statement, atomic against every other writer of the file.
func (d *DB) CompareAndSwap(ctx context.Context, origin string, oldSize uint64, oldRoot [32]byte, size uint64, root [32]byte, checkpoint []byte) (bool, error) {
	now := d.now().Unix()
	var res sql.Result
	var err error
	if oldSize == 0 && oldRoot == tiles.EmptyRoot {
		// Either no row yet, or a row at the empty tree.
		res, err = d.db.ExecContext(ctx,
			`INSERT INTO log (origin, size, root, checkpoint, updated) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root,
				checkpoint = excluded.checkpoint, updated = excluded.updated
			WHERE log.size = 0 AND log.root = ?`,
			origin, int64(size), root[:], checkpoint, now, tiles.EmptyRoot[:])
	} else {
		res, err = d.db.ExecContext(ctx,
			"UPDATE log SET size = ?, root = ?, checkpoint = ?, updated = ? WHERE origin = ? AND size = ? AND root = ?",
			int64(size), root[:], checkpoint, now, origin, int64(oldSize), oldRoot[:])
	}
	if err != nil {
		return false, fmt.Errorf("witnessdb: storing size %d for %q in %s: %w", size, origin, d.path, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("witnessdb: storing size %d for %q in %s: %w", size, origin, d.path, err)
	}
	return n == 1, nil
}
