package witnesshistory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custodylog/custody/internal/bindec"
	"github.com/custodylog/custody/store"
)

// A History is derived from the store's checkpoints, so it can always be
// read again; but a log that commits small batches stores a checkpoint per
// batch, millions of them, and reading and verifying them all takes
// minutes. So Run saves the History in the store (store.Aggregator) now
// and then, with the size of the newest checkpoint it read and that
// checkpoint's root, and Load restores it: the store is then read only
// from that checkpoint on. A saved history whose checkpoint the store does
// not have with that root (the store was restored from an older backup or
// replaced), or that does not parse, is ignored with a log line, and the
// checkpoints are read again from the first.

// snapshotMagic starts every saved history; its last byte is the format's
// version.
var snapshotMagic = []byte("custody-witnesses\x00\x01")

// maxSnapshotLen bounds a saved history: MaxWitnesses+1 witnesses with
// MaxDays days and an hourly window of hours, each number at most 10
// bytes, and their names.
const maxSnapshotLen = 64 + (MaxWitnesses+1)*(MaxNameLen+80+10*(MaxDays+2*int(HourlyWindow/time.Hour)))

// MarshalBinary encodes the History canonically: snapshotMagic; the newest
// checkpoint read (size, uvarint, and root; whether any was read, a byte;
// its note's length, uvarint); the checkpoints read and the bad
// signatures (uvarint); the number of witnesses and each, in order of
// name and key hash: name (uvarint length, bytes), key hash (4 bytes, big
// endian), known (a byte), cosigned, untimed (uvarint), first, last
// (varint), the largest size cosigned (uvarint), its days and hours, each
// a count and the numbers in increasing order (the first as a varint, then
// the differences, uvarint, at least 1); and last the SHA-256 of all of it,
// so a damaged snapshot is found out.
func (h *History) MarshalBinary() ([]byte, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.st.marshal(), nil
}

func (s *state) marshal() []byte {
	b := slices.Clone(snapshotMagic)
	b = binary.AppendUvarint(b, s.next)
	b = append(b, s.root[:]...)
	b = append(b, boolByte(s.read))
	b = binary.AppendUvarint(b, uint64(s.noteLen))
	b = binary.AppendUvarint(b, s.checkpoints)
	b = binary.AppendUvarint(b, s.bad)
	keys := make([]key, 0, len(s.witnesses))
	for k := range s.witnesses {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		w := s.witnesses[k]
		b = binary.AppendUvarint(b, uint64(len(w.name)))
		b = append(b, w.name...)
		b = binary.BigEndian.AppendUint32(b, w.keyHash)
		b = append(b, boolByte(w.known))
		b = binary.AppendUvarint(b, w.cosigned)
		b = binary.AppendUvarint(b, w.untimed)
		b = binary.AppendVarint(b, w.first)
		b = binary.AppendVarint(b, w.last)
		b = binary.AppendUvarint(b, w.lastSize)
		b = appendSet(b, w.days)
		b = appendSet(b, w.hours)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func compareKeys(a, b key) int {
	if a.name != b.name {
		if a.name < b.name {
			return -1
		}
		return 1
	}
	switch {
	case a.hash < b.hash:
		return -1
	case a.hash > b.hash:
		return 1
	}
	return 0
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendSet(b []byte, m map[int64]struct{}) []byte {
	keys := sortedKeys(m)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for i, k := range keys {
		if i == 0 {
			b = binary.AppendVarint(b, k)
		} else {
			b = binary.AppendUvarint(b, uint64(k-keys[i-1]))
		}
	}
	return b
}

// unmarshalState decodes a snapshot made by marshal. It accepts only the
// canonical encoding within the bounds of a History (names and numbers in
// strictly increasing order, shortest varints, nothing after the
// checksum) and fails on anything else, so a snapshot is never half-read.
func unmarshalState(data []byte) (state, error) {
	if len(data) > maxSnapshotLen {
		return state{}, fmt.Errorf("witnesshistory: saved history of %d bytes, more than %d", len(data), maxSnapshotLen)
	}
	if len(data) < len(snapshotMagic)+sha256.Size || !bytes.HasPrefix(data, snapshotMagic) {
		return state{}, errors.New("witnesshistory: not a saved witness history (wrong magic or version)")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return state{}, errors.New("witnesshistory: saved history checksum mismatch: it is damaged")
	}
	d := decoder{bindec.Decoder{B: body[len(snapshotMagic):], Prefix: "witnesshistory: malformed saved history"}}
	s := state{next: d.Uvarint(), witnesses: map[key]*witness{}}
	copy(s.root[:], d.Bytes(store.HashSize))
	s.read = d.bool()
	noteLen := d.Uvarint()
	if noteLen > 1<<30 {
		d.Fail("note length %d", noteLen)
	}
	s.noteLen = int(noteLen)
	s.checkpoints = d.Uvarint()
	s.bad = d.Uvarint()
	n := d.Uvarint()
	if d.Err == nil && n > MaxWitnesses+1 {
		d.Fail("%d witnesses", n)
	}
	var prev key
	others := 0
	for i := uint64(0); i < n && d.Err == nil; i++ {
		nl := d.Uvarint()
		if d.Err == nil && nl > MaxNameLen {
			d.Fail("name of %d bytes", nl)
		}
		w := &witness{name: string(d.Bytes(int(min(nl, MaxNameLen+1))))}
		if kh := d.Bytes(4); d.Err == nil {
			w.keyHash = binary.BigEndian.Uint32(kh)
		}
		w.known = d.bool()
		w.cosigned, w.untimed = d.Uvarint(), d.Uvarint()
		w.first, w.last = d.Varint(), d.Varint()
		w.lastSize = d.Uvarint()
		w.days = d.set(MaxDays)
		w.hours = d.set(2 * int(HourlyWindow/time.Hour))
		if d.Err != nil {
			break
		}
		k := key{w.name, w.keyHash}
		switch {
		case i > 0 && compareKeys(prev, k) >= 0:
			d.Fail("witness %q after %q", k.name, prev.name)
		case w.untimed > w.cosigned:
			d.Fail("witness %q: %d untimed of %d cosignatures", w.name, w.untimed, w.cosigned)
		case w.cosigned > w.untimed && w.first > w.last:
			d.Fail("witness %q: first cosignature after the last", w.name)
		case w.cosigned == w.untimed && (w.first != 0 || w.last != 0 || len(w.days) != 0 || len(w.hours) != 0):
			d.Fail("witness %q: times without timed cosignatures", w.name)
		case w.name == OtherName && (w.known || w.keyHash != 0):
			d.Fail("the %s witness with a key", OtherName)
		case w.lastSize > s.next:
			d.Fail("witness %q cosigned size %d, after the newest read %d", w.name, w.lastSize, s.next)
		}
		if w.name == OtherName {
			others++
		}
		prev = k
		s.witnesses[k] = w
	}
	if d.Err == nil && len(s.witnesses)-others > MaxWitnesses {
		d.Fail("%d witnesses", len(s.witnesses))
	}
	if d.Err == nil && len(d.B) != 0 {
		d.Fail("%d bytes after the history", len(d.B))
	}
	if d.Err == nil && !s.read && (s.next != 0 || s.root != (store.Hash{}) || s.noteLen != 0 || s.checkpoints != 0) {
		d.Fail("a checkpoint without having read one")
	}
	if d.Err != nil {
		return state{}, d.Err
	}
	return s, nil
}

// decoder reads a snapshot's fields, remembering the first error.
type decoder struct{ bindec.Decoder }

func (d *decoder) bool() bool {
	b := d.Bytes(1)
	if d.Err == nil && b[0] > 1 {
		d.Fail("flag %d", b[0])
	}
	return d.Err == nil && b[0] == 1
}

// set reads a count and that many strictly increasing numbers.
func (d *decoder) set(limit int) map[int64]struct{} {
	n := d.Uvarint()
	if d.Err == nil && n > uint64(limit) {
		d.Fail("%d numbers, more than %d", n, limit)
	}
	m := make(map[int64]struct{}, min(n, uint64(limit)))
	var prev int64
	for i := uint64(0); i < n && d.Err == nil; i++ {
		var v int64
		if i == 0 {
			v = d.Varint()
		} else {
			diff := d.Uvarint()
			if d.Err == nil && (diff == 0 || diff > 1<<40) {
				d.Fail("numbers not increasing")
			}
			v = prev + int64(diff)
		}
		m[v] = struct{}{}
		prev = v
	}
	return m
}

// Save saves the History in Config.Aggregates under AggregateName now.
func (h *History) Save(ctx context.Context) error {
	if h.cfg.Aggregates == nil {
		return errors.New("witnesshistory: no Config.Aggregates to save in")
	}
	h.mu.RLock()
	data, size := h.st.marshal(), h.st.next
	h.mu.RUnlock()
	if err := h.cfg.Aggregates.SaveAggregate(ctx, AggregateName, size, data); err != nil {
		return fmt.Errorf("witnesshistory: saving the history up to checkpoint %d: %w", size, err)
	}
	return nil
}

// Load restores the History saved in Config.Aggregates, if there is one
// and the store still has its newest checkpoint with the same root, so
// that Step then reads only the checkpoints from there. It returns the
// size restored (0: nothing restored; the checkpoints will all be read).
// It must be called before the first Step. A damaged snapshot, or one of
// another state of the store, is reported to the logger and ignored; an
// error means the store could not be read.
func (h *History) Load(ctx context.Context) (uint64, error) {
	size, data, err := h.cfg.Aggregates.LoadAggregate(ctx, AggregateName)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("witnesshistory: loading the saved history: %w", err)
	}
	s, err := unmarshalState(data)
	if err == nil && s.next != size {
		err = fmt.Errorf("saved at size %d but describes %d", size, s.next)
	}
	if err != nil {
		h.logger.Warn("the saved witness history is damaged: reading every checkpoint again", "err", err)
		return 0, nil
	}
	if !s.read {
		return 0, nil
	}
	h.reads.Add(1)
	cp, err := h.cfg.Source.Checkpoint(ctx, s.next)
	if errors.Is(err, store.ErrNotFound) || (err == nil && cp.Root != s.root) {
		h.logger.Warn("the saved witness history is of another state of the store (restored from a backup, or replaced?): reading every checkpoint again", "saved_size", s.next)
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("witnesshistory: reading checkpoint %d to check the saved history: %w", s.next, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st.read {
		return 0, fmt.Errorf("witnesshistory: restoring a history at size %d into one that has read checkpoints already", s.next)
	}
	// Known witnesses keep their records; a restored record of a key the
	// server no longer knows is kept as unverified.
	for k, w := range s.witnesses {
		_, known := h.known[k]
		w.known = w.known && known
	}
	for k := range h.known {
		if s.witnesses[k] == nil && len(s.witnesses) < MaxWitnesses {
			s.witnesses[k] = &witness{name: k.name, keyHash: k.hash, known: true, days: map[int64]struct{}{}, hours: map[int64]struct{}{}}
		}
	}
	h.st, h.restored = s, s.next
	h.logger.Info("restored the saved witness history", "size", s.next, "checkpoints", s.checkpoints)
	return s.next, nil
}
