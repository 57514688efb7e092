package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/verify"
)

// SampleWatchFile is the name, in a state directory, of the file where a
// SampleWatch keeps, per sample, the checkpoint and list state it last
// verified.
const SampleWatchFile = "samples.json"

// KindEvent is the Kind of the Finding a SampleWatch reports for each new
// event of a watched sample (not a policy finding: `custody monitor
// --sample` reports every event once).
const KindEvent Kind = "event"

// SampleWatch watches the chains of some samples, as `custody monitor
// --sample` does: each Round verifies each sample's chain since the
// checkpoint it last verified (sampleindex proofs with since=M, the new
// checkpoint proven to extend the old one and the sample's earlier list
// proven unchanged) and reports each new event once.
type SampleWatch struct {
	// Client reads and authenticates the log's checkpoints.
	Client *verify.Client
	// Proofs fetches the sample proofs (HTTPSampleProofs).
	Proofs SampleProofSource
	// Samples are the sample identifiers watched.
	Samples []string
	// Policy, if set, is the routing policy each chain is checked
	// against: its new findings are reported too.
	Policy *Policy
	// StateDir holds SampleWatchFile. Required.
	StateDir string
}

type watchState struct {
	Version int                     `json:"version"`
	Samples map[string]watchedChain `json:"samples"`
}

type watchedChain struct {
	// Checkpoint is the signed note the chain was last verified at.
	Checkpoint string `json:"checkpoint"`
	Size       uint64 `json:"size"`
	ListSize   uint64 `json:"list_size"`
	ListRoot   []byte `json:"list_root,omitempty"`
}

// Round verifies every watched sample once and returns, as the report's
// New (and Findings), a KindEvent finding for each event no earlier round
// reported, in each sample's log order, and the policy's new findings; the
// report's Origin and Size are the checkpoint verified. The state is
// written only when every sample verified. A failed proof is a
// *verify.VerificationError (see VerifySample).
func (w *SampleWatch) Round(ctx context.Context) (*AuditReport, error) {
	if w.StateDir == "" {
		return nil, errors.New("audit: SampleWatch without a state directory")
	}
	path := filepath.Join(w.StateDir, SampleWatchFile)
	st := watchState{Version: 1, Samples: map[string]watchedChain{}}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &st); err != nil || st.Version != 1 {
			return nil, &StateError{Dir: w.StateDir, Err: fmt.Errorf("%s: not a version 1 sample watch state (move it away to start over): %v", path, err)}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, &StateError{Dir: w.StateDir, Err: err}
	}
	rep := &AuditReport{Findings: []Finding{}, Counts: map[string]map[string]uint64{}}
	for _, s := range w.Samples {
		opts := SampleOptions{Sample: s, Policy: w.Policy}
		if prev, ok := st.Samples[s]; ok {
			opts.SinceNote = []byte(prev.Checkpoint)
			opts.Prev = &sampleindex.ListState{Size: prev.ListSize}
			copy(opts.Prev.Root[:], prev.ListRoot)
		}
		r, err := VerifySample(ctx, w.Client, w.Proofs, opts)
		if err != nil {
			return nil, fmt.Errorf("sample %s: %w", s, err)
		}
		rep.Origin, rep.Size, rep.Root, rep.Checkpoint = r.Origin, r.Size, "", r.Checkpoint
		for _, e := range r.Events {
			rep.New = append(rep.New, Finding{Index: e.Index, Sample: s, Kind: KindEvent, Detail: eventDetail(e.Event)})
		}
		for _, f := range r.Findings {
			if f.Index >= r.Since {
				rep.New = append(rep.New, f)
			}
		}
		c := watchedChain{Checkpoint: r.Checkpoint, Size: r.Size, ListSize: r.List.Size}
		if r.List.Size > 0 {
			c.ListRoot = r.List.Root[:]
		}
		st.Samples[s] = c
	}
	rep.Findings = append(rep.Findings, rep.New...)
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(w.StateDir, 0o700); err != nil {
		return nil, &StateError{Dir: w.StateDir, Write: true, Err: err}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return nil, &StateError{Dir: w.StateDir, Write: true, Err: err}
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, &StateError{Dir: w.StateDir, Write: true, Err: err}
	}
	return rep, nil
}

// eventDetail describes an event in one line: "ACTION at LOCATION[ ->
// TO], region REGION, TIME".
func eventDetail(ev record.Event) string {
	loc := ev.Location
	if ev.To != "" {
		loc += " -> " + ev.To
	}
	return fmt.Sprintf("%s at %s, region %s, %s", ev.Action, loc, ev.Region, ev.Time.UTC().Format(time.RFC3339))
}

// ReadSampleFile reads sample identifiers from data, one per line; blank
// lines and lines starting with # are skipped. Each must be a valid
// sample identifier; errors name the line.
func ReadSampleFile(data []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if err := record.CheckSample(l); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}
