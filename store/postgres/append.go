package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/custodylog/custody/store"
	"github.com/jackc/pgx/v5"
)

// Append commits the batch in one transaction: all of it or nothing. When it
// returns nil the transaction is committed and flushed to the server's WAL
// (see the package documentation), so the batch's checkpoint may be
// published.
//
// It returns an error wrapping store.ErrConflict, and writes nothing, if
// b.Prev is not the latest stored checkpoint (same size and root; nil only
// for an empty store), if b.Checkpoint.Size is not b.Prev.Size plus the
// number of entries, if the entries' indexes do not run consecutively from
// b.Prev.Size, if an entry's index or identity is already taken, or if the
// database aborted the transaction for a concurrent one (serialization
// failure). It returns an error wrapping store.ErrTileMismatch, and writes
// nothing, if a tile's data does not start with the stored data of that
// tile.
//
// A batch without entries whose checkpoint has the size and root of b.Prev
// replaces the stored note of that checkpoint with a note that extends it
// byte for byte (adds signatures, e.g. witnesses' cosignatures); nothing
// else changes. A note that does not extend the stored one is refused with
// store.ErrConflict (store.CheckNoteExtends).
//
// If ctx is canceled before the commit, Append rolls back and returns an
// error wrapping ctx.Err(); once it has sent COMMIT it waits for the answer
// regardless, so that its result says whether the batch was committed.
func (s *Store) Append(ctx context.Context, b store.Batch) error {
	size := b.PrevSize()
	err := s.append(ctx, b)
	if err == nil {
		return nil
	}
	if isRetryable(err) && !errors.Is(err, store.ErrConflict) {
		err = fmt.Errorf("%w (the database aborted the transaction for a concurrent one: %w)", store.ErrConflict, err)
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return fmt.Errorf("postgres: appending batch at size %d: %w", size, err)
}

func (s *Store) append(ctx context.Context, b store.Batch) (err error) {
	if err := store.CheckBatch(b); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			rollback(ctx, tx)
		}
	}()
	if err := swapHead(ctx, tx, b.Prev, b.Checkpoint); err != nil {
		return err
	}
	if err := s.checkIdentities(ctx, tx, b.Entries, b.PrevSize()); err != nil {
		return err
	}
	if err := insertEntries(ctx, tx, b.Entries); err != nil {
		if sqlState(err) == "23505" {
			// Only the primary key is unique: an index taken, which
			// swapHead rules out unless other software wrote entries.
			return fmt.Errorf("%w: %w", err, store.ErrConflict)
		}
		return err
	}
	if err := writeTiles(ctx, tx, b.Tiles); err != nil {
		return err
	}
	if err := writeCheckpoint(ctx, tx, b.Checkpoint, b.Prev); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// From here on the outcome must be known: finish the COMMIT even if
	// ctx is canceled meanwhile.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	done = true // committed or not, the transaction is over
	if err := tx.Commit(cctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	// Only now, with the batch committed, may lookups find it. The batch is
	// durable whatever happens to the index: an index failure is reported
	// by the next lookup (and the next Append's identity check), and
	// reopening the store rebuilds what is missing.
	s.idx.add(b.Entries)
	return nil
}

// checkIdentities returns an error wrapping store.ErrConflict if the
// identity of one of entries, the batch to be appended at size, is already
// in the log. It runs in the write transaction after swapHead: the log has
// exactly size entries, all visible to tx, and no writer in any process
// can add any until the transaction ends. So it first brings the lookup
// index up to size (if another server appended since this Store last
// looked), and then its answer holds until the commit. (store.CheckBatch
// has refused identities repeated in the batch.)
func (s *Store) checkIdentities(ctx context.Context, tx pgx.Tx, entries []store.Entry, size uint64) error {
	if len(entries) == 0 {
		return nil
	}
	x := s.idx
	x.mu.Lock()
	err := x.upTo(ctx, tx, size)
	indexed := x.indexed.Load()
	x.mu.Unlock()
	if err != nil {
		return err
	}
	if indexed != size {
		return fmt.Errorf("the log has %d entries but %d are indexed: the database is damaged or was changed by other software", size, indexed)
	}
	found := make(map[store.Hash]uint64)
	if err := x.byIdentity(ctx, tx, store.Identities(entries), found); err != nil {
		return fmt.Errorf("checking the identities of the batch: %w", err)
	}
	return store.CheckIdentitiesFree(entries, found)
}

// swapHead is the compare-and-swap: it moves the head row from prev (size -1
// and an empty root for nil) to next, and fails with store.ErrConflict if
// the head is not prev. The UPDATE locks the row until the transaction
// ends, serialising writers.
func swapHead(ctx context.Context, tx pgx.Tx, prev *store.Checkpoint, next store.Checkpoint) error {
	prevSize, prevRoot := int64(-1), []byte{}
	if prev != nil {
		prevSize, prevRoot = int64(prev.Size), prev.Root[:]
	}
	tag, err := tx.Exec(ctx, "UPDATE head SET size = $1, root = $2 WHERE id = 1 AND size = $3 AND root = $4",
		int64(next.Size), next.Root[:], prevSize, prevRoot)
	if err != nil {
		return fmt.Errorf("updating head: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var (
		size int64
		root []byte
	)
	if err := tx.QueryRow(ctx, "SELECT size, root FROM head WHERE id = 1").Scan(&size, &root); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return errors.New("the head table has no row: the database is damaged")
		}
		return fmt.Errorf("reading head: %w", err)
	}
	switch {
	case size < 0 && prev != nil:
		return fmt.Errorf("the batch extends a checkpoint of size %d but the store has none: %w", prev.Size, store.ErrConflict)
	case prev == nil:
		return fmt.Errorf("the batch starts the log but the store has a checkpoint of size %d: %w", size, store.ErrConflict)
	default:
		return fmt.Errorf("the latest checkpoint is size %d root %x, not size %d root %x: %w", size, root, prev.Size, prev.Root, store.ErrConflict)
	}
}

// entryColumns are the columns insertEntries copies.
var entryColumns = []string{"idx", "identity", "leaf_hash", "sample", "data"}

// insertEntries inserts the entries with COPY.
func insertEntries(ctx context.Context, tx pgx.Tx, entries []store.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"entries"}, entryColumns, pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
		e := &entries[i]
		data := e.Data
		if data == nil {
			data = []byte{} // nil would be NULL
		}
		return []any{int64(e.Index), e.Identity[:], e.LeafHash[:], e.Sample, data}, nil
	}))
	if err != nil {
		return fmt.Errorf("inserting entries %d to %d: %w", entries[0].Index, entries[len(entries)-1].Index, err)
	}
	return nil
}

type tileKey struct {
	level uint8
	index uint64
}

// writeTiles stores each tile whose data extends the stored data of that
// tile (or of the same tile earlier in the batch), and fails with
// store.ErrTileMismatch if one does not. It locks the stored rows first
// (SELECT ... FOR UPDATE).
func writeTiles(ctx context.Context, tx pgx.Tx, tiles []store.Tile) error {
	if len(tiles) == 0 {
		return nil
	}
	var keys []tileKey
	seen := make(map[tileKey]bool, len(tiles))
	for _, t := range tiles {
		k := tileKey{t.Level, t.Index}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	stored := make(map[tileKey][]byte, len(keys))
	for start := 0; start < len(keys); start += tilesPerStatement {
		chunk := keys[start:min(start+tilesPerStatement, len(keys))]
		args := make([]any, 0, 2*len(chunk))
		for _, k := range chunk {
			args = append(args, int32(k.level), int64(k.index))
		}
		rows, err := tx.Query(ctx, "SELECT level, idx, data FROM tiles WHERE (level, idx) IN ("+placeholders(len(chunk), 2, 1)+") FOR UPDATE", args...)
		if err != nil {
			return fmt.Errorf("reading tiles: %w", err)
		}
		var (
			level int32
			index int64
			data  []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&level, &index, &data}, func() error {
			stored[tileKey{uint8(level), uint64(index)}] = data
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading tiles: %w", err)
		}
	}

	// The newest data of each tile, checked against the stored data and
	// against the same tile earlier in the batch.
	newest := make(map[tileKey][]byte, len(keys))
	for _, t := range tiles {
		k := tileKey{t.Level, t.Index}
		old, ok := newest[k]
		if !ok {
			old = stored[k]
		}
		if err := store.CheckTileExtends(t, old); err != nil {
			return err
		}
		newest[k] = t.Data
	}

	var (
		inserts []any
		batch   pgx.Batch
	)
	for _, k := range keys {
		data := newest[k]
		old, ok := stored[k]
		switch {
		case !ok:
			inserts = append(inserts, int32(k.level), int64(k.index), data)
		case len(data) > len(old):
			batch.Queue("UPDATE tiles SET data = $3 WHERE level = $1 AND idx = $2", int32(k.level), int64(k.index), data)
		}
	}
	for start := 0; start < len(inserts); start += 3 * tilesPerStatement {
		chunk := inserts[start:min(start+3*tilesPerStatement, len(inserts))]
		batch.Queue("INSERT INTO tiles (level, idx, data) VALUES "+placeholders(len(chunk)/3, 3, 1), chunk...)
	}
	if batch.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
		return fmt.Errorf("writing tiles: %w", err)
	}
	return nil
}

// writeCheckpoint stores the new checkpoint. store.CheckBatch and swapHead have
// made sure that it is larger than the latest one, or that it has the size
// and root of prev, the latest one, whose note it then replaces with c.Note
// if that extends it (store.CheckNoteExtends).
func writeCheckpoint(ctx context.Context, tx pgx.Tx, c store.Checkpoint, prev *store.Checkpoint) error {
	var err error
	if prev != nil && c.Size == prev.Size {
		var stored []byte
		if err := tx.QueryRow(ctx, "SELECT note FROM checkpoints WHERE size = $1", int64(c.Size)).Scan(&stored); err != nil {
			return fmt.Errorf("reading the stored note of checkpoint %d: %w", c.Size, err)
		}
		if err := store.CheckNoteExtends(c.Size, stored, c.Note); err != nil {
			return err
		}
		if len(stored) == len(c.Note) {
			return nil // the same note: nothing to change
		}
		_, err = tx.Exec(ctx, "UPDATE checkpoints SET note = $1 WHERE size = $2", c.Note, int64(c.Size))
	} else {
		_, err = tx.Exec(ctx, "INSERT INTO checkpoints (size, root, note) VALUES ($1, $2, $3)", int64(c.Size), c.Root[:], c.Note)
	}
	if sqlState(err) == "23505" {
		return fmt.Errorf("checkpoint of size %d already exists: %w", c.Size, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("writing checkpoint of size %d: %w", c.Size, err)
	}
	return nil
}
