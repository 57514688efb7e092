package stats

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/internal/bindec"
	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/store"
)

// The counts and the activity aggregate are derived from the log, so they
// can always be recounted; but recounting reads every entry, which on a
// large log takes minutes. So a server saves them now and then in the
// store (store.Aggregator), with the tree size they cover and the leaf
// hash of the last entry counted, and at start-up restores them and reads
// only the entries after that size. A saved snapshot that does not
// describe the log (the database was restored from an older backup, or
// replaced), does not parse, or is of format version 1 (which has no
// activity aggregate) is ignored, with a log line, and the log is
// recounted (once: the next save is of the current version).

// AggregateName is the name under which Persist saves the counts.
const AggregateName = "stats/counts"

// Defaults of PersistOptions.
const (
	DefaultPersistInterval = 30 * time.Second
	DefaultPersistEntries  = 1 << 20
	// saveTimeout bounds the last save, made after ctx is done.
	saveTimeout = 10 * time.Second
)

// snapshotMagic starts every snapshot; its last byte is the format's
// version: 2, the counts and the activity aggregate. Version 1 had only
// the counts (snapshotMagicV1).
var (
	snapshotMagic   = []byte("custody-stats\x00\x02")
	snapshotMagicV1 = []byte("custody-stats\x00\x01")
)

// errSnapshotV1 is UnmarshalBinary's error for a snapshot of version 1.
var errSnapshotV1 = errors.New("stats: a snapshot of format version 1, without the activity aggregate")

// Bounds a snapshot must respect besides MaxRegions and MaxPairs.
const (
	// maxNameLen bounds a region or location name in a snapshot. The
	// names are those of events, which record bounds far below this.
	maxNameLen = 1 << 12
	// maxSnapshotLen bounds a snapshot: MaxPairs names of maxNameLen and
	// the largest activity aggregate.
	maxSnapshotLen = (MaxPairs+MaxRegions+1)*(maxNameLen+2*binary.MaxVarintLen64) + binary.MaxVarintLen64 + activity.MaxBinaryLen
)

// Snapshot describes the counts of entries [0, Size) of a log.
type Snapshot struct {
	// Size is the number of entries counted, from index 0.
	Size uint64
	// Last is the leaf hash (SHA-256 of 0x00 and the entry's data, as in
	// RFC 6962) of entry Size-1, which the log must still have for the
	// snapshot to describe it; zero when Size is 0.
	Last store.Hash
	// Counts are the counts, region -> location -> events; they add up to
	// Size less the site attestations among the entries (which are not
	// events).
	Counts map[string]map[string]uint64
	// Activity is the activity aggregate of the same events: its Events
	// are what Counts add up to.
	Activity *activity.Aggregate
}

// Snapshot returns a copy of the counts and of the activity aggregate
// with the size they cover.
func (c *Counter) Snapshot() Snapshot {
	c.mu.RLock()
	s := Snapshot{Size: c.size, Counts: c.countsLocked(), Activity: c.act.Clone()}
	last := c.last
	c.mu.RUnlock()
	if s.Size > 0 {
		s.Last = tiles.LeafHash(last)
	}
	return s
}

// Restore makes c's counts those of s, whose last entry's data is last
// (entry s.Size-1 of the log, read from the store: the caller has checked
// that its leaf hash is s.Last). It fails, changing nothing, if c has
// counted anything already, if s.Size is 0, if the counts do not add up
// to s.Size or break the bounds MaxRegions and MaxPairs, or if s has no
// Activity or one of another number of events. c keeps a copy of
// s.Activity.
func (c *Counter) Restore(s Snapshot, last []byte) error {
	if s.Size == 0 {
		return errors.New("stats: restoring an empty snapshot")
	}
	if tiles.LeafHash(last) != s.Last {
		return fmt.Errorf("stats: restoring counts of %d entries: entry %d is not the one counted last", s.Size, s.Size-1)
	}
	pairs, total, err := checkCounts(s.Counts, s.Size)
	if err != nil {
		return err
	}
	if err := checkActivity(s.Activity, total, s.Size); err != nil {
		return err
	}
	act := s.Activity.Clone()
	counts := make(map[string]map[string]uint64, len(s.Counts))
	for r, m := range s.Counts {
		counts[r] = make(map[string]uint64, len(m))
		for l, n := range m {
			counts[r][l] = n
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.size != 0 {
		return fmt.Errorf("stats: restoring counts of %d entries into a counter that has counted %d already", s.Size, c.size)
	}
	c.counts, c.pairs, c.total, c.size, c.last, c.act = counts, pairs, total, s.Size, last, act
	return nil
}

// checkActivity checks that a is the activity of total events among
// entries [0, size).
func checkActivity(a *activity.Aggregate, total, size uint64) error {
	if a == nil {
		return errors.New("stats: snapshot without the activity aggregate")
	}
	if a.Events() != total {
		return fmt.Errorf("stats: snapshot's activity aggregate has %d events, its counts add up to %d", a.Events(), total)
	}
	if _, last, ok := a.IndexRange(); ok && last >= size {
		return fmt.Errorf("stats: snapshot's activity aggregate names entry %d, past its size %d", last, size)
	}
	return nil
}

// checkCounts checks that counts add up to at most size (the other
// entries are site attestations) and respect the bounds a Counter keeps,
// and returns the number of pairs a Counter would have (those whose
// location is not OtherKey) and the events counted.
func checkCounts(counts map[string]map[string]uint64, size uint64) (pairs int, total uint64, err error) {
	regions := 0
	for r, m := range counts {
		if r != OtherKey {
			regions++
		}
		if len(m) == 0 {
			return 0, 0, fmt.Errorf("stats: snapshot has region %q without locations", r)
		}
		for l, n := range m {
			if l != OtherKey {
				pairs++
			}
			if n == 0 || n > math.MaxUint64-total {
				return 0, 0, fmt.Errorf("stats: snapshot has count %d at (%q, %q), after a total of %d", n, r, l, total)
			}
			total += n
		}
	}
	if regions > MaxRegions || pairs > MaxPairs {
		return 0, 0, fmt.Errorf("stats: snapshot has %d regions and %d pairs, more than the bounds (%d, %d)", regions, pairs, MaxRegions, MaxPairs)
	}
	if total > size {
		return 0, 0, fmt.Errorf("stats: snapshot counts add up to %d events, more than its size %d", total, size)
	}
	return pairs, total, nil
}

// MarshalBinary encodes s canonically: snapshotMagic, the size (uvarint),
// Last, the number of regions, each region in increasing order as its
// name (uvarint length, bytes), its number of locations and each location
// in increasing order as its name and count (uvarint); then the activity
// aggregate (its length, uvarint, and activity.Aggregate.MarshalBinary);
// and last the SHA-256 of everything before, so that a damaged snapshot
// is found out. It fails if s has no Activity.
func (s Snapshot) MarshalBinary() ([]byte, error) {
	if s.Activity == nil {
		return nil, errors.New("stats: encoding a snapshot without the activity aggregate")
	}
	b, err := s.appendCounts(slices.Clone(snapshotMagic))
	if err != nil {
		return nil, err
	}
	act, err := s.Activity.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("stats: encoding the snapshot's activity: %w", err)
	}
	b = append(binary.AppendUvarint(b, uint64(len(act))), act...)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

// appendCounts appends s's size, Last and counts to b.
func (s Snapshot) appendCounts(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, s.Size)
	b = append(b, s.Last[:]...)
	regions := sortedKeys(s.Counts)
	b = binary.AppendUvarint(b, uint64(len(regions)))
	for _, r := range regions {
		if len(r) > maxNameLen {
			return nil, fmt.Errorf("stats: region name of %d bytes, more than %d", len(r), maxNameLen)
		}
		b = appendString(b, r)
		locs := sortedKeys(s.Counts[r])
		b = binary.AppendUvarint(b, uint64(len(locs)))
		for _, l := range locs {
			if len(l) > maxNameLen {
				return nil, fmt.Errorf("stats: location name of %d bytes, more than %d", len(l), maxNameLen)
			}
			b = appendString(b, l)
			b = binary.AppendUvarint(b, s.Counts[r][l])
		}
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// UnmarshalBinary decodes a snapshot made by MarshalBinary. It accepts
// only the canonical encoding (names in strictly increasing order, every
// count positive, the counts adding up to the size, within the bounds of
// a Counter, an activity aggregate that activity.UnmarshalBinary accepts
// of as many events as the counts, nothing after the checksum) and fails
// on anything else, so that a snapshot is never half-read. A snapshot of
// version 1 (no activity) is refused with an error saying so.
func (s *Snapshot) UnmarshalBinary(data []byte) error {
	if len(data) > maxSnapshotLen {
		return fmt.Errorf("stats: snapshot of %d bytes, more than %d", len(data), maxSnapshotLen)
	}
	if bytes.HasPrefix(data, snapshotMagicV1) {
		return errSnapshotV1
	}
	if len(data) < len(snapshotMagic)+sha256.Size || !bytes.HasPrefix(data, snapshotMagic) {
		return errors.New("stats: not a snapshot of the counts (wrong magic or version)")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return errors.New("stats: snapshot checksum mismatch: it is damaged")
	}
	d := decoder{bindec.Decoder{B: body[len(snapshotMagic):], Prefix: "stats: malformed snapshot"}}
	out := Snapshot{Size: d.Uvarint()}
	copy(out.Last[:], d.Bytes(store.HashSize))
	nr := d.Uvarint()
	if d.Err == nil && nr > MaxRegions+1 {
		d.Fail("%d regions", nr)
	}
	out.Counts = make(map[string]map[string]uint64, min(nr, MaxRegions+1))
	prevR := ""
	for i := uint64(0); i < nr && d.Err == nil; i++ {
		r := d.String(maxNameLen)
		if i > 0 && r <= prevR {
			d.Fail("region %q after %q", r, prevR)
		}
		prevR = r
		nl := d.Uvarint()
		if d.Err == nil && (nl == 0 || nl > MaxPairs+1) {
			d.Fail("%d locations in region %q", nl, r)
		}
		m := make(map[string]uint64, min(nl, 64))
		prevL := ""
		for j := uint64(0); j < nl && d.Err == nil; j++ {
			l := d.String(maxNameLen)
			if j > 0 && l <= prevL {
				d.Fail("location %q after %q", l, prevL)
			}
			prevL = l
			m[l] = d.Uvarint()
		}
		out.Counts[r] = m
	}
	act := d.Bytes(int(min(d.Uvarint(), uint64(len(d.B)+1))))
	if d.Err == nil && len(d.B) != 0 {
		d.Fail("%d bytes after the activity aggregate", len(d.B))
	}
	if d.Err != nil {
		return d.Err
	}
	if out.Size == 0 && out.Last != (store.Hash{}) {
		return errors.New("stats: snapshot of size 0 with a last leaf hash")
	}
	_, total, err := checkCounts(out.Counts, out.Size)
	if err != nil {
		return err
	}
	out.Activity = activity.New()
	if err := out.Activity.UnmarshalBinary(act); err != nil {
		return fmt.Errorf("stats: the snapshot's activity: %w", err)
	}
	if err := checkActivity(out.Activity, total, out.Size); err != nil {
		return err
	}
	*s = out
	return nil
}

// decoder reads a snapshot's fields, remembering the first error.
type decoder struct{ bindec.Decoder }

// Load restores c from the snapshot saved in st under AggregateName, if
// there is one and it still describes the log that c reads (its Source
// has entry Size-1 with the snapshot's leaf hash), so that c then reads
// only the entries after it. It must be called before c has counted
// anything (before Run, or before the log is opened). It returns the size
// restored, or 0 when c will count the whole log: no snapshot, a damaged
// one, or one of another state of the log (the database was restored from
// an older backup, or replaced), which it reports to c's logger. It
// returns an error only when the store could not be read; c is usable
// either way (it then counts from 0).
func Load(ctx context.Context, c *Counter, st store.Aggregator) (uint64, error) {
	size, data, err := st.LoadAggregate(ctx, AggregateName)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stats: loading the saved counts: %w", err)
	}
	var s Snapshot
	if err := s.UnmarshalBinary(data); errors.Is(err, errSnapshotV1) {
		c.logger.Warn("the saved counts are of format version 1, without the activity aggregate: recounting the log once", "saved_size", size)
		return 0, nil
	} else if err != nil {
		c.logger.Warn("the saved counts are damaged: recounting the log", "err", err)
		return 0, nil
	}
	if s.Size != size {
		c.logger.Warn("the saved counts are damaged: recounting the log", "err", fmt.Errorf("saved at size %d but describe %d entries", size, s.Size))
		return 0, nil
	}
	if s.Size == 0 {
		return 0, nil
	}
	es, err := c.src.Entries(ctx, s.Size-1, s.Size)
	if err != nil {
		return 0, fmt.Errorf("stats: reading entry %d to check the saved counts: %w", s.Size-1, err)
	}
	if len(es) != 1 || es[0].Index != s.Size-1 {
		c.logger.Warn("the saved counts are of a longer log (was the database restored from a backup?): recounting the log", "saved_size", s.Size)
		return 0, nil
	}
	if tiles.LeafHash(es[0].Data) != s.Last {
		c.logger.Warn("the saved counts are of another log (was the database restored from a backup or replaced?): recounting the log", "saved_size", s.Size)
		return 0, nil
	}
	if err := c.Restore(s, es[0].Data); err != nil {
		return 0, err
	}
	c.logger.Info("restored the saved counts", "size", s.Size)
	return s.Size, nil
}

// PersistOptions configure Persist.
type PersistOptions struct {
	// Interval is the longest time counted entries go unsaved (default
	// DefaultPersistInterval).
	Interval time.Duration
	// Entries is how many newly counted entries make Persist save before
	// Interval is up (default DefaultPersistEntries).
	Entries uint64
}

// Persist saves c's counts in st under AggregateName whenever Entries
// more entries were counted or Interval has passed with some counted,
// until ctx is done, and then once more (within 10 s) so that a clean
// shutdown leaves nothing to recount. It runs on its own goroutine, off
// the log's commit path; a failed save is reported to c's logger and
// retried at the next occasion. The saved counts are never ahead of the
// log: c counts only committed entries.
func Persist(ctx context.Context, c *Counter, st store.Aggregator, opts PersistOptions) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultPersistInterval
	}
	if opts.Entries == 0 {
		opts.Entries = DefaultPersistEntries
	}
	var saved uint64 // the size this Persist last saved (0: none)
	save := func(ctx context.Context) {
		if c.Counted() == saved {
			return // nothing new (0: nothing counted)
		}
		size, err := Save(ctx, c, st)
		if err != nil {
			c.logger.Error("saving the counts", "size", size, "err", err)
			return
		}
		saved = size
	}
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
			save(sctx)
			cancel()
			return
		case <-tick.C:
			save(ctx)
		case <-c.progress:
			if n := c.Counted(); n > saved && n-saved >= opts.Entries {
				save(ctx)
			}
		}
	}
}

// Save saves c's counts in st under AggregateName now, and returns the
// size they cover. Persist calls it; a writer that is not a server (such
// as the prefill) calls it once at the end.
func Save(ctx context.Context, c *Counter, st store.Aggregator) (uint64, error) {
	s := c.Snapshot()
	data, err := s.MarshalBinary()
	if err == nil {
		err = st.SaveAggregate(ctx, AggregateName, s.Size, data)
	}
	if err != nil {
		return s.Size, fmt.Errorf("stats: saving the counts of %d entries: %w", s.Size, err)
	}
	return s.Size, nil
}
