package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/hashindex"
	"github.com/mattn/go-sqlite3"
)

// Append commits the batch in one transaction: all of it or nothing. When it
// returns nil the transaction is committed and fsynced (see the package
// documentation), so the batch's checkpoint may be published.
//
// It returns an error wrapping store.ErrConflict, and writes nothing, if
// b.Prev is not the latest stored checkpoint (same size and root; nil only
// for an empty store), if b.Checkpoint.Size is not b.Prev.Size plus the
// number of entries, if the entries' indexes do not run consecutively from
// b.Prev.Size, or if an entry's index or identity is already taken. It
// returns an error wrapping store.ErrTileMismatch, and writes nothing, if a
// tile's data does not start with the stored data of that tile.
//
// A batch without entries whose checkpoint has the size and root of b.Prev
// replaces the stored note of that checkpoint with a note that extends it
// byte for byte (adds signatures, e.g. witnesses' cosignatures); nothing
// else changes. A note that does not extend the stored one is refused with
// store.ErrConflict (store.CheckNoteExtends).
func (s *Store) Append(ctx context.Context, b store.Batch) error {
	size := b.PrevSize()
	if err := s.append(ctx, b, size); err != nil {
		return fmt.Errorf("sqlite: appending batch at size %d: %w", size, err)
	}
	return nil
}

func (s *Store) append(ctx context.Context, b store.Batch, size uint64) (err error) {
	if err := store.CheckBatch(b); err != nil {
		return err
	}
	sampleKeys := make([]hashindex.Key, len(b.Entries))
	for i := range b.Entries {
		sampleKeys[i] = sampleKey([]byte(b.Entries[i].Sample))
	}
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see the writer's DSN
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := checkPrev(ctx, tx, b.Prev); err != nil {
		return err
	}
	if err := s.checkIdentities(ctx, tx, b.Entries, size); err != nil {
		return err
	}
	if err := insertEntries(ctx, tx, b.Entries); err != nil {
		return err
	}
	for _, t := range b.Tiles {
		if err := writeTile(ctx, tx, t); err != nil {
			return err
		}
	}
	if err := writeCheckpoint(ctx, tx, b.Checkpoint, b.Prev); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	// Only now, with the batch committed, may lookups find it. The batch is
	// durable whatever happens to the index: an index failure is reported
	// by the next lookup, and reopening rebuilds the index.
	s.idx.add(b.Entries, sampleKeys)
	return nil
}

// checkIdentities returns an error wrapping store.ErrConflict if the
// identity of one of entries, the batch to be appended at size, is already
// in the log. It runs in the write transaction, after checkPrev: the log
// has exactly size entries, and no other writer can add any until the
// transaction ends. So it first brings the indexes up to size (if another
// Store appended since this one last looked), and then its answer holds
// until the commit. (store.CheckBatch has refused identities repeated in the
// batch.)
func (s *Store) checkIdentities(ctx context.Context, tx *sql.Tx, entries []store.Entry, size uint64) error {
	if len(entries) == 0 {
		return nil
	}
	s.idx.mu.Lock()
	indexed := s.idx.indexed.Load()
	var err error
	if indexed < size {
		err = s.idx.catchUp(ctx, tx)
		indexed = s.idx.indexed.Load()
	}
	s.idx.mu.Unlock()
	if err != nil {
		return err
	}
	if indexed != size {
		return fmt.Errorf("the log has %d entries but %d are indexed: the database is damaged or was changed by other software", size, indexed)
	}

	found := make(map[store.Hash]uint64)
	if err := s.idx.lookupIdentities(ctx, tx, store.Identities(entries), found); err != nil {
		return fmt.Errorf("looking up the identities of the batch: %w", err)
	}
	return store.CheckIdentitiesFree(entries, found)
}

// checkPrev is the compare-and-swap: the latest stored checkpoint must be
// prev, or there must be none if prev is nil.
func checkPrev(ctx context.Context, tx *sql.Tx, prev *store.Checkpoint) error {
	var (
		size int64
		root []byte
	)
	err := tx.QueryRowContext(ctx, "SELECT size, root FROM checkpoints ORDER BY size DESC LIMIT 1").Scan(&size, &root)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if prev != nil {
			return fmt.Errorf("the batch extends a checkpoint of size %d but the store has none: %w", prev.Size, store.ErrConflict)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading latest checkpoint: %w", err)
	case prev == nil:
		return fmt.Errorf("the batch starts the log but the store has a checkpoint of size %d: %w", size, store.ErrConflict)
	case uint64(size) != prev.Size || !bytes.Equal(root, prev.Root[:]):
		return fmt.Errorf("the latest checkpoint is size %d root %x, not size %d root %x: %w", size, root, prev.Size, prev.Root, store.ErrConflict)
	}
	return nil
}

// insertEntries inserts the entries, entriesPerInsert rows a statement.
func insertEntries(ctx context.Context, tx *sql.Tx, entries []store.Entry) error {
	args := make([]any, 0, 5*min(len(entries), entriesPerInsert))
	for start := 0; start < len(entries); start += entriesPerInsert {
		chunk := entries[start:min(start+entriesPerInsert, len(entries))]
		args = args[:0]
		for i := range chunk {
			e := &chunk[i]
			data := e.Data
			if data == nil {
				data = []byte{} // nil would be bound as NULL
			}
			args = append(args, int64(e.Index), e.Identity[:], e.LeafHash[:], e.Sample, data)
		}
		query := insertEntriesFull
		if len(chunk) != entriesPerInsert {
			query = insertEntriesSQL(len(chunk))
		}
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			if isUniqueViolation(err) {
				// checkPrev and store.CheckBatch make this impossible unless
				// the entries table holds rows beyond the latest checkpoint.
				return fmt.Errorf("inserting entries %d to %d: index already taken (%v): %w", chunk[0].Index, chunk[len(chunk)-1].Index, err, store.ErrConflict)
			}
			return fmt.Errorf("inserting entries %d to %d: %w", chunk[0].Index, chunk[len(chunk)-1].Index, err)
		}
	}
	return nil
}

var insertEntriesFull = insertEntriesSQL(entriesPerInsert)

func insertEntriesSQL(rows int) string {
	return "INSERT INTO entries (idx, identity, leaf_hash, sample, data) VALUES " + placeholders(rows, 5)
}

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

// writeTile stores t if its data extends the stored data of that tile.
func writeTile(ctx context.Context, tx *sql.Tx, t store.Tile) error {
	var old []byte
	err := tx.QueryRowContext(ctx, "SELECT data FROM tiles WHERE level = ? AND idx = ?", int64(t.Level), int64(t.Index)).Scan(&old)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("reading tile %d/%d: %w", t.Level, t.Index, err)
	default:
		if err := store.CheckTileExtends(t, old); err != nil {
			return err
		}
		if len(t.Data) == len(old) {
			return nil // already stored
		}
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO tiles (level, idx, data) VALUES (?, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET data = excluded.data",
		int64(t.Level), int64(t.Index), t.Data)
	if err != nil {
		return fmt.Errorf("writing tile %d/%d: %w", t.Level, t.Index, err)
	}
	return nil
}

// writeCheckpoint stores the new checkpoint. store.CheckBatch and checkPrev have
// made sure that it is larger than the latest one, or that it has the size
// and root of prev, the latest one, whose note it then replaces with c.Note
// if that extends it (store.CheckNoteExtends).
func writeCheckpoint(ctx context.Context, tx *sql.Tx, c store.Checkpoint, prev *store.Checkpoint) error {
	var err error
	if prev != nil && c.Size == prev.Size {
		var stored []byte
		if err := tx.QueryRowContext(ctx, "SELECT note FROM checkpoints WHERE size = ?", int64(c.Size)).Scan(&stored); err != nil {
			return fmt.Errorf("reading the stored note of checkpoint %d: %w", c.Size, err)
		}
		if err := store.CheckNoteExtends(c.Size, stored, c.Note); err != nil {
			return err
		}
		if len(stored) == len(c.Note) {
			return nil // the same note: nothing to change
		}
		_, err = tx.ExecContext(ctx, "UPDATE checkpoints SET note = ? WHERE size = ?", c.Note, int64(c.Size))
	} else {
		_, err = tx.ExecContext(ctx, "INSERT INTO checkpoints (size, root, note) VALUES (?, ?, ?)", int64(c.Size), c.Root[:], c.Note)
	}
	if isUniqueViolation(err) {
		return fmt.Errorf("checkpoint of size %d already exists: %w", c.Size, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("writing checkpoint of size %d: %w", c.Size, err)
	}
	return nil
}
