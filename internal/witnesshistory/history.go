// Package witnesshistory keeps, for the dashboard's timeline, when each
// witness cosigned the log's checkpoints: per witness, the days (and, for
// the newest two weeks, the hours) in which it cosigned a stored
// checkpoint, its first and last cosignature, and how many checkpoints it
// cosigned. A witness that stopped cosigning shows as days without a
// cosignature while other witnesses went on, or the log grew.
//
// The source is the store's checkpoints (store.Store.Checkpoints): every
// tree head the log committed, with its signed note as finally stored.
// cosignature/v1 signatures carry their signing time; the cosignatures of
// the witnesses the server knows are verified with their keys, others are
// kept under their name and key ID, marked unverified.
//
// A History is incremental and bounded: it reads only the checkpoints
// after the last it read (that one again, as the newest note can still
// gain cosignatures), MaxWitnesses witnesses by name, MaxDays days and
// HourlyWindow of hours each. With a store.Aggregator it saves itself
// (Save, Run) and restores at start-up (Load), so a restart reads only the
// checkpoints stored since the save, not the millions before.
package witnesshistory

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// Bounds of a History.
const (
	// MaxWitnesses is the most witnesses (name and key) kept apart; the
	// cosignatures of further ones are kept under OtherName.
	MaxWitnesses = 32
	// MaxDays is the most days kept per witness (the newest).
	MaxDays = 3660
	// HourlyWindow is how far back from a witness's newest cosignature
	// its hours are kept.
	HourlyWindow = 14 * 24 * time.Hour
	// MaxNameLen is the longest witness name kept; longer names are
	// kept under OtherName.
	MaxNameLen = 256
	// maxFuture is how far after now a cosignature's time may be to be
	// placed in time; later ones (a wrong clock) are counted but not
	// placed.
	maxFuture = 24 * time.Hour
)

// OtherName is the name under which the witnesses past MaxWitnesses (or
// with a name over MaxNameLen) are kept. It is not a valid key name (it
// has parentheses and no dot), so no witness has it.
const OtherName = "(other)"

// AggregateName is the name under which Save keeps a History in a
// store.Aggregator.
const AggregateName = "dashboard/witnesses"

// Defaults of Config.
const (
	DefaultPage         = 1000
	DefaultInterval     = time.Second
	DefaultSaveEvery    = 100_000
	DefaultSaveInterval = 30 * time.Second
)

// Source is where a History reads stored checkpoints: a store.Store.
type Source interface {
	Checkpoints(ctx context.Context, from uint64, limit int) ([]store.Checkpoint, error)
	Checkpoint(ctx context.Context, size uint64) (store.Checkpoint, error)
}

// Config configures a History.
type Config struct {
	// Source holds the checkpoints. Required.
	Source Source
	// Aggregates, if set, is where Run saves the History and Load
	// restores it from.
	Aggregates store.Aggregator
	// Log is the log's key: its signature on a note is not a cosignature.
	// Required.
	Log note.Verifier
	// Witnesses are the keys of the witnesses the server knows: their
	// cosignatures are verified (one that fails is counted in Bad, not
	// kept).
	Witnesses []note.Verifier
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
	// Page is how many checkpoints one step reads (default DefaultPage);
	// Interval how often Run looks for new ones once caught up (default
	// DefaultInterval); SaveEvery and SaveInterval when it saves: after
	// that many checkpoints read, or that long with some read.
	Page         int
	Interval     time.Duration
	SaveEvery    uint64
	SaveInterval time.Duration
	// Now is the current time (nil: time.Now).
	Now func() time.Time
}

// witness is what a History keeps of one witness.
type witness struct {
	name     string
	keyHash  uint32
	known    bool   // a key the server was given: its cosignatures verified
	cosigned uint64 // checkpoints cosigned
	untimed  uint64 // of which without a usable time (not cosignature/v1, or in the future)
	first    int64  // Unix seconds of the first and last cosignature; valid when cosigned > untimed
	last     int64
	lastSize uint64 // the largest checkpoint size it cosigned
	days     map[int64]struct{}
	hours    map[int64]struct{}
}

type key struct {
	name string
	hash uint32
}

// state is a History's data, as saved.
type state struct {
	next        uint64     // the size of the newest checkpoint read (read again next time)
	root        store.Hash // its root
	noteLen     int        // its note's length as read (a longer note has more cosignatures)
	read        bool       // whether any checkpoint was read
	checkpoints uint64     // distinct checkpoints read
	bad         uint64     // signatures of known keys that did not verify, and notes that did not parse
	witnesses   map[key]*witness
}

// History is the cosignature history of a log. Create it with New; Run
// follows the store. Its methods are safe for concurrent use.
type History struct {
	cfg    Config
	known  map[key]note.Verifier
	logger *slog.Logger

	mu       sync.RWMutex
	st       state
	restored uint64 // the size Load restored (0: none)
	failure  string // the last error of Run, cleared by a good step
	reads    atomic.Uint64
}

// New returns an empty History reading cfg.Source.
func New(cfg Config) (*History, error) {
	if cfg.Source == nil || cfg.Log == nil {
		return nil, errors.New("witnesshistory: Config.Source and Config.Log are required")
	}
	cfg.Page = cmp.Or(cfg.Page, DefaultPage)
	if cfg.Page < 2 {
		cfg.Page = 2 // the newest read again, and one more
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.SaveEvery = cmp.Or(cfg.SaveEvery, DefaultSaveEvery)
	cfg.SaveInterval = cmp.Or(cfg.SaveInterval, DefaultSaveInterval)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &History{cfg: cfg, known: map[key]note.Verifier{}, logger: cfg.Logger}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	for _, v := range cfg.Witnesses {
		h.known[key{v.Name(), v.KeyHash()}] = v
	}
	h.st.witnesses = map[key]*witness{}
	return h, nil
}

// Reads is how many times the History called its Source (for tests: a
// restored History reads little).
func (h *History) Reads() uint64 { return h.reads.Load() }

// Step reads the checkpoints stored since the last it read (that one again)
// and adds their cosignatures; it returns how many new or grown notes it
// read (0: it is caught up).
func (h *History) Step(ctx context.Context) (int, error) {
	h.mu.RLock()
	from, read, last, noteLen := h.st.next, h.st.read, h.st.next, h.st.noteLen
	h.mu.RUnlock()
	h.reads.Add(1)
	cps, err := h.cfg.Source.Checkpoints(ctx, from, h.cfg.Page)
	if err != nil {
		return 0, fmt.Errorf("witnesshistory: reading checkpoints from size %d: %w", from, err)
	}
	if read && len(cps) > 0 && cps[0].Size == last && len(cps[0].Note) == noteLen {
		cps = cps[1:] // the newest read, unchanged
	}
	if len(cps) == 0 {
		return 0, nil
	}
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, cp := range cps {
		if !h.st.read || cp.Size != h.st.next {
			h.st.checkpoints++
		}
		h.add(cp, now)
		h.st.next, h.st.root, h.st.noteLen, h.st.read = cp.Size, cp.Root, len(cp.Note), true
	}
	return len(cps), nil
}

// add records the cosignatures on cp. h.mu is held.
func (h *History) add(cp store.Checkpoint, now time.Time) {
	_, err := note.Open(cp.Note, note.VerifierList())
	var un *note.UnverifiedNoteError
	if !errors.As(err, &un) {
		h.st.bad++ // a note that does not parse: the store is damaged
		return
	}
	n := un.Note
	for _, s := range n.UnverifiedSigs {
		if s.Name == h.cfg.Log.Name() && s.Hash == h.cfg.Log.KeyHash() {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || len(raw) < 4 {
			h.st.bad++
			continue
		}
		k := key{s.Name, s.Hash}
		v, known := h.known[k]
		if known && !v.Verify([]byte(n.Text), raw[4:]) {
			h.st.bad++
			continue
		}
		w := h.witness(k, known)
		if w.cosigned > 0 && w.lastSize == cp.Size {
			continue // this note read before, with this cosignature
		}
		w.cosigned++
		w.lastSize = max(w.lastSize, cp.Size)
		t, err := verify.CosignatureTime(raw)
		if err != nil || t.After(now.Add(maxFuture)) {
			w.untimed++
			continue
		}
		w.place(t.Unix())
	}
}

// witness returns the record of k, creating it (or the OtherName record
// past the bounds).
func (h *History) witness(k key, known bool) *witness {
	if w := h.st.witnesses[k]; w != nil {
		return w
	}
	if len(h.st.witnesses) >= MaxWitnesses || len(k.name) > MaxNameLen || k.name == OtherName {
		k, known = key{name: OtherName}, false
		if w := h.st.witnesses[k]; w != nil {
			return w
		}
	}
	w := &witness{name: k.name, keyHash: k.hash, known: known, days: map[int64]struct{}{}, hours: map[int64]struct{}{}}
	h.st.witnesses[k] = w
	return w
}

// place records a cosignature at Unix time t.
func (w *witness) place(t int64) {
	timed := w.cosigned - w.untimed // including this one
	if timed == 1 {
		w.first, w.last = t, t
	} else {
		w.first, w.last = min(w.first, t), max(w.last, t)
	}
	w.days[floorDiv(t, 86400)] = struct{}{}
	hour := floorDiv(t, 3600)
	if hour > floorDiv(w.last, 3600)-int64(HourlyWindow/time.Hour) {
		w.hours[hour] = struct{}{}
	}
	if len(w.days) > MaxDays {
		delete(w.days, minKey(w.days)) // one new day: one old one goes
	}
	if len(w.hours) > 2*int(HourlyWindow/time.Hour) {
		oldest := floorDiv(w.last, 3600) - int64(HourlyWindow/time.Hour)
		for k := range w.hours {
			if k <= oldest {
				delete(w.hours, k)
			}
		}
	}
}

// minKey is the smallest key of m (not empty).
func minKey(m map[int64]struct{}) int64 {
	first, k0 := true, int64(0)
	for k := range m {
		if first || k < k0 {
			first, k0 = false, k
		}
	}
	return k0
}

func sortedKeys(m map[int64]struct{}) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Witness is one witness as a View shows it.
type Witness struct {
	Name  string
	KeyID string // 8 hex digits; "" for OtherName
	// Known is whether the server was given the witness's key, so its
	// cosignatures were verified; the others are as stored, unverified.
	Known bool
	// Cosigned is how many stored checkpoints it cosigned; Untimed how
	// many of those cosignatures carry no usable time.
	Cosigned, Untimed uint64
	// First and Last are its first and newest cosignature times (zero if
	// none is timed).
	First, Last time.Time
	// Marked are the starts of the buckets (of the View's resolution) in
	// [from, to) in which it cosigned.
	Marked []time.Time
}

// View is the history over a range of time.
type View struct {
	// Resolution is the buckets' width: as asked, except that hours
	// older than the hourly window are shown as days.
	Resolution activity.Resolution
	Witnesses  []Witness // known ones first, then by name
	// Active are the bucket starts in which some witness cosigned.
	Active []time.Time
	// Checkpoints is how many stored checkpoints were read; Size the
	// newest one's size; Bad how many signatures failed or notes did not
	// parse; Restored the size a saved history was restored at (0: none).
	Checkpoints, Size, Bad, Restored uint64
	// Failure is Run's last error, if its last step failed.
	Failure string
}

// View returns the witnesses and the buckets of resolution r in [from, to)
// in which each cosigned. It reads no store.
func (h *History) View(from, to time.Time, r activity.Resolution) View {
	h.mu.RLock()
	defer h.mu.RUnlock()
	v := View{Resolution: r, Checkpoints: h.st.checkpoints, Size: h.st.next, Bad: h.st.bad, Restored: h.restored, Failure: h.failure}
	if r == activity.Hourly {
		for _, w := range h.st.witnesses {
			if w.cosigned > w.untimed && from.Unix() < w.last-int64(HourlyWindow/time.Second) {
				v.Resolution = activity.Daily
				break
			}
		}
	}
	width := int64(86400)
	if v.Resolution == activity.Hourly {
		width = 3600
	}
	lo, hi := floorDiv(from.Unix()+width-1, width), floorDiv(to.Unix()+width-1, width)
	active := map[int64]struct{}{}
	for _, w := range h.st.witnesses {
		out := Witness{Name: w.name, Known: w.known, Cosigned: w.cosigned, Untimed: w.untimed}
		if w.name != OtherName {
			out.KeyID = fmt.Sprintf("%08x", w.keyHash)
		}
		if w.cosigned > w.untimed {
			out.First, out.Last = time.Unix(w.first, 0).UTC(), time.Unix(w.last, 0).UTC()
		}
		set := w.days
		if v.Resolution == activity.Hourly {
			set = w.hours
		}
		for b := range set {
			if b >= lo && b < hi {
				out.Marked = append(out.Marked, time.Unix(b*width, 0).UTC())
				active[b] = struct{}{}
			}
		}
		slices.SortFunc(out.Marked, time.Time.Compare)
		v.Witnesses = append(v.Witnesses, out)
	}
	slices.SortFunc(v.Witnesses, func(a, b Witness) int {
		if a.Known != b.Known {
			if a.Known {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.KeyID, b.KeyID))
	})
	for _, b := range sortedKeys(active) {
		v.Active = append(v.Active, time.Unix(b*width, 0).UTC())
	}
	return v
}

// AddKnown makes sure every known witness has a record, so one that never
// cosigned is listed too (with no cosignature).
func (h *History) AddKnown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.known {
		h.witness(k, true)
	}
}

// Run restores the saved history (with Config.Aggregates), then reads the
// store's checkpoints to the newest and follows it, saving now and then,
// until ctx is done; then it saves once more.
func (h *History) Run(ctx context.Context) {
	h.AddKnown()
	if h.cfg.Aggregates != nil {
		if _, err := h.Load(ctx); err != nil {
			h.logger.Error("witness history: loading the saved history", "err", err)
		}
	}
	var savedAt uint64 // checkpoints read when last saved
	savedTime := time.Now()
	save := func(ctx context.Context) {
		h.mu.RLock()
		n := h.st.checkpoints
		h.mu.RUnlock()
		if h.cfg.Aggregates == nil || n == savedAt {
			return
		}
		if err := h.Save(ctx); err != nil {
			h.logger.Error("witness history: saving", "err", err)
			return
		}
		savedAt, savedTime = n, time.Now()
	}
	tick := time.NewTicker(h.cfg.Interval)
	defer tick.Stop()
	for {
		for ctx.Err() == nil {
			n, err := h.Step(ctx)
			h.mu.Lock()
			if err != nil && ctx.Err() == nil {
				h.failure = err.Error()
				h.logger.Error("witness history", "err", err)
			} else if err == nil {
				h.failure = ""
			}
			read := h.st.checkpoints
			h.mu.Unlock()
			if read-savedAt >= h.cfg.SaveEvery || (read != savedAt && time.Since(savedTime) >= h.cfg.SaveInterval) {
				save(ctx)
			}
			if err != nil || n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			save(sctx)
			cancel()
			return
		case <-tick.C:
		}
	}
}
