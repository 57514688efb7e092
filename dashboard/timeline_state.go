package dashboard

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/internal/witnesshistory"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
)

// CheckpointStore is where the timeline's witness history reads the
// stored checkpoints: the log's store.Store. If it is also a
// store.Aggregator (both custody backends are), the history is saved in it
// and restored at start-up.
type CheckpointStore = witnesshistory.Source

// timeline is the timeline page's state: the witness history (nil
// without Config.Checkpoints) and the event times of the findings shown.
type timeline struct {
	mu      sync.Mutex
	history *witnesshistory.History
	times   map[uint64]time.Time // finding entry index -> event time; zero: not an event
}

// newTimeline makes the timeline's state for cfg; the history starts
// reading when Run runs.
func newTimeline(cfg Config, logger *slog.Logger) (*timeline, error) {
	tl := &timeline{times: map[uint64]time.Time{}}
	if cfg.Checkpoints == nil {
		return tl, nil
	}
	hc := witnesshistory.Config{Source: cfg.Checkpoints, Log: cfg.Verifier, Witnesses: cfg.Witnesses, Logger: logger}
	if agg, ok := cfg.Checkpoints.(store.Aggregator); ok {
		hc.Aggregates = agg
	}
	h, err := witnesshistory.New(hc)
	if err != nil {
		return nil, fmt.Errorf("dashboard: the witness history: %w", err)
	}
	tl.history = h
	return tl, nil
}

// run follows the store's checkpoints until ctx is done.
func (tl *timeline) run(ctx context.Context) {
	if h := tl.hist(); h != nil {
		h.Run(ctx)
	}
}

// hist is the witness history (nil: none).
func (tl *timeline) hist() *witnesshistory.History {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.history
}

// setHistory replaces the witness history (for tests, which read the
// store through their own handle).
func (tl *timeline) setHistory(h *witnesshistory.History) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.history = h
}

// eventTimes returns the event time of each finding's entry, reading from
// l only the entries it has not read before (in runs of nearby indices),
// and forgets those of findings no longer kept. A finding on a site
// attestation (not an event) has no time.
func (tl *timeline) eventTimes(ctx context.Context, l *log.Log, fs []audit.Finding) (map[uint64]time.Time, error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var missing []uint64
	keep := make(map[uint64]time.Time, len(fs))
	for _, f := range fs {
		if t, ok := tl.times[f.Index]; ok {
			keep[f.Index] = t
		} else if _, dup := keep[f.Index]; !dup {
			missing = append(missing, f.Index)
			keep[f.Index] = time.Time{}
		}
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	for i := 0; i < len(missing); {
		j := i + 1
		for j < len(missing) && missing[j]-missing[j-1] <= 16 && missing[j]-missing[i] < 256 {
			j++
		}
		es, err := l.Entries(ctx, missing[i], missing[j-1]+1)
		if err != nil {
			return nil, fmt.Errorf("dashboard: reading entries %d to %d for the findings' times: %w", missing[i], missing[j-1], err)
		}
		for _, e := range es {
			if _, want := keep[e.Index]; !want || record.KindOf(e.Data) == record.EntryAttestation {
				continue
			}
			ev, err := record.DecodeEntry(e.Data)
			if err != nil {
				return nil, fmt.Errorf("dashboard: entry %d: %w", e.Index, err)
			}
			keep[e.Index] = ev.Time.UTC()
		}
		i = j
	}
	tl.times = keep
	return keep, nil
}
