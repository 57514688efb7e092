package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// AuditState is what an auditor keeps between runs of Audit: the last
// checkpoint it verified and everything needed to continue from there
// without downloading the log again. It is JSON; MarshalJSON output is
// stable.
type AuditState struct {
	// Version is the state format, currently 1.
	Version int `json:"version"`
	// Origin is the audited log's origin.
	Origin string `json:"origin"`
	// Size is the number of entries audited.
	Size uint64 `json:"size"`
	// Checkpoint is the signed note of the last verified checkpoint.
	Checkpoint string `json:"checkpoint"`
	// Tree is the compact range of the first Size entries: "ctb1", Size
	// as 8 bytes big-endian, then the hashes of the perfect subtrees that
	// make up the tree, largest (leftmost) first, 32 bytes each.
	Tree []byte `json:"tree"`
	// Engine is the routing-policy engine's state (Engine.MarshalState),
	// unless EngineFile is set.
	Engine json.RawMessage `json:"engine,omitempty"`
	// EngineFile, when set, is the name of the file next to the state
	// file that holds the engine's state instead (Auditor writes it so:
	// it is as large as the number of samples, and streamed rather than
	// held in memory).
	EngineFile string `json:"engine_file,omitempty"`
	// enginePath is where the engine's state is (EngineFile in the
	// directory ReadState read, or the file Audit wrote in
	// AuditOptions.StateDir for WriteState), "" when it is in Engine.
	enginePath string
	// Findings are all findings so far, in index order.
	Findings []Finding `json:"findings"`
	// Activity is the activity aggregate (flows, collections, time
	// series) of the events of entries [ActivityFrom, Size), as
	// activity.Aggregate.MarshalBinary (base64 in the JSON). A state
	// written before custody kept it has none: the next incremental
	// audit's aggregate then starts at that state's Size.
	Activity []byte `json:"activity,omitempty"`
	// ActivityFrom is the first entry Activity covers: 0 unless the state
	// descends from one without an aggregate.
	ActivityFrom uint64 `json:"activity_from,omitempty"`
	// Audited is when the state was written.
	Audited time.Time `json:"audited"`
}

// AuditStateVersion is the AuditState format this package writes and reads.
const AuditStateVersion = 1

// AuditReport is the result of an audit: the verified checkpoint, every
// finding of the policy engine and the event counts per region × location.
// Its JSON is the `custody audit --json` output.
type AuditReport struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"`
	// From is the size the audit continued from (0 on a first run).
	From     uint64                       `json:"from"`
	Findings []Finding                    `json:"findings"`
	Counts   map[string]map[string]uint64 `json:"counts"`
	// New are the findings among the entries no earlier run audited,
	// [State.Size, Size) (all on a first run), for monitors. With Full
	// every entry is checked again, but only these are New.
	New []Finding `json:"-"`
	// Checkpoint is the verified signed note.
	Checkpoint string `json:"-"`
	// Sites counts the site signatures checked; nil when the policy has
	// no sites (attestation entries are then skipped unchecked).
	Sites *SiteStats `json:"sites,omitempty"`
	// SiteEvidence are the attestations that do not hold, to keep
	// (WriteSiteEvidence).
	SiteEvidence []SiteEvidence `json:"-"`
	// SampleIndex is SampleIndexVerified when the checkpoint commits a
	// sample index (custody-sample-index line) and the map recomputed
	// from the entries has that root, SampleIndexNotCommitted when it
	// commits none (then nothing was checked).
	SampleIndex string `json:"sample_index"`
	// Activity is the activity aggregate of the events of the verified
	// entries [ActivityFrom, Size): their flows, collections and time
	// series, for the regulator's report. Audit fills it; it is nil in a
	// report made otherwise (SampleWatch).
	Activity *activity.Aggregate `json:"-"`
	// ActivityFrom is the first entry Activity, Flows and Collections
	// cover: 0 (the whole log) unless an incremental audit continued
	// from a state written by a custody that kept no aggregate; then it
	// is that state's size, and a run with Full covers the whole log
	// again.
	ActivityFrom uint64 `json:"activity_from"`
	// Flows are Activity's transferred events per (region, source,
	// destination), sorted (activity.Aggregate.Flows).
	Flows []activity.Flow `json:"flows"`
	// Collections are Activity's collected events per (region, data
	// centre), sorted (activity.Aggregate.Collections).
	Collections []activity.Collection `json:"collections"`
}

// ErrStateOtherKey is wrapped by Audit's error when the stored state's
// checkpoint is for the log's origin but signed by another key: the state
// was written while auditing another log with the same origin, or before
// the log changed its key. Nothing is audited; the state is not changed.
var ErrStateOtherKey = errors.New("the audit state was written for another key of this origin")

// AuditOptions configure Audit.
type AuditOptions struct {
	// Policy is the routing policy to evaluate every event against.
	Policy *Policy
	// State is the previous run's state, or nil on a first run (the
	// current checkpoint is then trusted on first use).
	State *AuditState
	// Full re-reads and re-checks every entry from index 0 even with a
	// state (the state's checkpoint is still required to be extended).
	Full bool
	// Progress, if set, is called now and then with entries done and total.
	Progress func(done, total uint64)
	// RequireSignatures reports every event no valid site attestation
	// covers as unsigned (the log's required mode), not only those at a
	// location whose site had a valid key (docs/site-signing.md).
	RequireSignatures bool
	// IndexDir is where the sample index recomputed from the entries is
	// kept between runs (SampleIndexFile); "" uses a temporary directory
	// removed when Audit returns (the index is then rebuilt every run).
	IndexDir string
	// Memory is the budget for the policy engine's per-sample state in
	// memory (EngineOptions.Memory): beyond it the engine spills samples
	// to files under SpillDir. 0 is DefaultMemory; negative is no limit.
	Memory int64
	// SpillDir is where the engine spills (EngineOptions.SpillDir); ""
	// is os.TempDir(). The files are removed when Audit returns.
	SpillDir string
	// NoState makes Audit return no state (nil) and spend nothing on it:
	// the engine's state is as large as the number of samples. For audits
	// whose state is not kept.
	NoState bool
	// StateDir, if set, is the directory WriteState will write the
	// returned state to: Audit writes the engine's state there, as a file
	// of its own, rather than into AuditState.Engine (see WriteState).
	StateDir string
}

// Audit verifies the log behind c and evaluates every event against the
// routing policy. It fetches and verifies the newest checkpoint (log
// signature, and witness quorum if c has a trust policy); with a previous
// state, it proves the new checkpoint extends the stored one (rollback,
// fork and inconsistency are caught) and continues from the stored size;
// it reads every new entry from authenticated entry bundles, recomputes the
// root from them and compares it with the signed one. It returns the report
// and the state to keep for the next run. A *VerificationError (see
// verify.IsVerificationError) means the log misbehaved and carries the evidence;
// any other error means the audit could not be done (network, disk, usage).
// Nothing in opts.State is modified.
func Audit(ctx context.Context, c *verify.Client, opts AuditOptions) (*AuditReport, *AuditState, error) {
	if opts.Policy == nil {
		return nil, nil, errors.New("audit: no routing policy")
	}
	cp, signed, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, nil, err
	}
	eo := EngineOptions{Memory: opts.Memory, SpillDir: opts.SpillDir}
	if eo.Memory == 0 {
		eo.Memory = DefaultMemory
	}
	engine := NewEngineWith(opts.Policy, eo)
	defer func() { engine.Close() }()
	sites, err := newSiteAudit(opts.Policy, c.Origin(), opts.RequireSignatures)
	if err != nil {
		return nil, nil, err
	}
	tree := newTreeBuilder()
	act, actFrom := activity.New(), uint64(0)
	var findings []Finding
	var from uint64
	var audited uint64 // entries an earlier run audited
	if st := opts.State; st != nil {
		if st.Version != AuditStateVersion {
			return nil, nil, fmt.Errorf("audit state has version %d, this custody reads %d: move it away to start over", st.Version, AuditStateVersion)
		}
		if st.Origin != c.Origin() {
			return nil, nil, fmt.Errorf("audit state is for log %q, not %q", st.Origin, c.Origin())
		}
		// The stored checkpoint was fully verified when it was stored; it
		// is checked again against the log's key only, so that adding a
		// witness trust policy later does not invalidate earlier state.
		old, _, err := verify.OpenCheckpoint([]byte(st.Checkpoint), c.Origin(), c.Verifiers())
		if err != nil {
			var unverified *note.UnverifiedNoteError
			if errors.As(err, &unverified) {
				return nil, nil, fmt.Errorf("%w: its checkpoint of size %d is signed by a key named %q but not by the given key (%w)", ErrStateOtherKey, st.Size, c.Origin(), err)
			}
			return nil, nil, fmt.Errorf("audit state: its checkpoint does not verify with the given key: %w", err)
		}
		if err := tree.unmarshalBinary(st.Tree); err != nil {
			return nil, nil, fmt.Errorf("audit state: %w", err)
		}
		if tree.size() != old.Size || tree.root() != old.Root || st.Size != old.Size {
			return nil, nil, fmt.Errorf("audit state is inconsistent with itself (tree of %d entries, checkpoint of %d): move it away to start over", tree.size(), old.Size)
		}
		if err := readEngineState(engine, st); err != nil {
			return nil, nil, fmt.Errorf("audit state: %w", err)
		}
		if engine.Next() != old.Size {
			return nil, nil, fmt.Errorf("audit state: policy state covers %d entries, checkpoint %d", engine.Next(), old.Size)
		}
		if _, err := c.CheckExtends(ctx, old, []byte(st.Checkpoint), cp); err != nil {
			return nil, nil, err
		}
		audited = old.Size
		if opts.Full {
			engine.Close()
			engine, tree = NewEngineWith(opts.Policy, eo), newTreeBuilder()
		} else {
			findings = append(findings, st.Findings...)
			from = old.Size
			if act, actFrom, err = stateActivity(st); err != nil {
				return nil, nil, fmt.Errorf("audit state: %w", err)
			}
		}
	}
	indexRoot, hasIndex, err := committedIndex(cp, signed)
	if err != nil {
		return nil, nil, err
	}
	var index *indexBuilder
	if hasIndex {
		var start uint64
		if index, start, err = openIndexBuilder(opts.IndexDir, from); err != nil {
			return nil, nil, fmt.Errorf("audit: opening the recomputed sample index: %w", err)
		}
		defer index.Close()
		if err := rebuildIndex(ctx, c, cp, index, start, from); err != nil {
			return nil, nil, err
		}
	}
	var fresh []Finding
	total := cp.Size - from
	// Workers decode the entries of each bundle (prepare) while the
	// bundles before it go through the engine here (consume), in index
	// order; a bundle's entries reach consume only once authenticated.
	prepare := func(b *verify.Bundle) {
		d, _ := b.Scratch.(*decoded)
		if d == nil {
			d = new(decoded)
			b.Scratch = d
		}
		d.events = slices.Grow(d.events[:0], len(b.Entries))
		d.ids = d.ids[:0]
		d.bad, d.err = -1, nil
		for j, e := range b.Entries {
			if record.KindOf(e) == record.EntryAttestation {
				d.events = append(d.events, record.Event{}) // isAttestation
				d.ids = sites.identity(d.ids, nil)
				continue
			}
			ev, err := record.DecodeEntry(e)
			if err != nil {
				d.bad, d.err = j, err
				return
			}
			d.events = append(d.events, ev)
			d.ids = sites.identity(d.ids, e)
		}
	}
	consume := func(b *verify.Bundle) error {
		d := b.Scratch.(*decoded)
		for j := range b.Entries {
			i := b.Start + uint64(j)
			if j == d.bad {
				idx := i
				return &verify.VerificationError{Evidence: verify.Evidence{
					Kind:   verify.EvidenceBadEntry,
					What:   fmt.Sprintf("entry %d, signed into the log, is not a valid canonical event: %v", i, d.err),
					Origin: cp.Origin, NewCheckpoint: string(signed), NewSize: cp.Size,
					Index: &idx, Computed: base64.StdEncoding.EncodeToString(b.Entries[j]), Time: time.Now().UTC(),
				}, Err: d.err}
			}
			if isAttestation(&d.events[j]) {
				engine.Skip(i + 1)
				sites.attestation(i, b.Entries[j])
				continue
			}
			sites.event(i, &d.events[j], d.ids, j)
			act.Add(i, &d.events[j])
			if f := engine.Add(i, d.events[j]); f != nil {
				fresh = append(fresh, f...)
			}
			if opts.Progress != nil && (i-from)%4096 == 0 {
				opts.Progress(i-from, total)
			}
		}
		if err := engine.Err(); err != nil {
			return err
		}
		if err := index.addBundle(ctx, b, d.events); err != nil {
			return err
		}
		// The leaf hashes were computed (and checked against the tile) by
		// ReadBundles; a whole bundle goes in as the subtree it is.
		if len(b.Entries) == verify.TileWidth && tree.size() == b.Start {
			tree.appendSubtree(verify.TileHeight, b.Root)
		} else {
			for _, h := range b.LeafHashes {
				tree.appendLeafHash(h)
			}
		}
		return nil
	}
	if err := c.ReadBundles(ctx, from, cp.Size, cp, prepare, consume); err != nil {
		return nil, nil, err
	}
	if opts.Progress != nil {
		opts.Progress(total, total)
	}
	if err := tree.checkCheckpoint(cp, signed); err != nil {
		return nil, nil, err
	}
	fresh, siteEvidence, siteStats := sites.finish(fresh, cp.Origin, string(signed))
	sampleIndex := SampleIndexNotCommitted
	if index != nil {
		got, err := index.Finish(ctx)
		if err != nil {
			return nil, nil, err
		}
		if err := checkIndex(cp, signed, indexRoot, got); err != nil {
			return nil, nil, err
		}
		sampleIndex = SampleIndexVerified
	}
	if findings == nil {
		findings = fresh // no copy: millions of findings are not rare
	} else {
		findings = append(findings, fresh...)
	}
	news := fresh
	if from < audited {
		news = nil
		for _, f := range fresh {
			if f.Index >= audited {
				news = append(news, f)
			}
		}
	}
	if findings == nil {
		findings = []Finding{}
	}
	rep := &AuditReport{
		Origin: cp.Origin, Size: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Root[:]),
		From: from, Findings: findings, Counts: engine.Counts(), New: news, Checkpoint: string(signed),
		Sites: siteStats, SiteEvidence: siteEvidence,
		SampleIndex: sampleIndex,
		Activity:    act, ActivityFrom: actFrom, Flows: act.Flows(), Collections: act.Collections(),
	}
	if opts.NoState {
		return rep, nil, nil
	}
	treeBytes, err := tree.marshalBinary()
	if err != nil {
		return nil, nil, err
	}
	actBytes, err := act.MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("audit: keeping the activity aggregate: %w", err)
	}
	st := &AuditState{
		Version: AuditStateVersion, Origin: cp.Origin, Size: cp.Size, Checkpoint: string(signed),
		Tree: treeBytes, Findings: findings, Activity: actBytes, ActivityFrom: actFrom, Audited: time.Now().UTC(),
	}
	if err := writeEngineState(engine, st, opts.StateDir); err != nil {
		return nil, nil, err
	}
	return rep, st, nil
}

// stateActivity returns the activity aggregate st keeps and the first
// entry it covers; a state without one (written by a custody that kept
// none) gives an empty aggregate that starts at st.Size.
func stateActivity(st *AuditState) (*activity.Aggregate, uint64, error) {
	a := activity.New()
	if st.Activity == nil {
		return a, st.Size, nil
	}
	if err := a.UnmarshalBinary(st.Activity); err != nil {
		return nil, 0, fmt.Errorf("%w: move the state away to start over, or audit with --full", err)
	}
	if st.ActivityFrom > st.Size || a.Events() > st.Size-st.ActivityFrom {
		return nil, 0, fmt.Errorf("its activity aggregate has %d events from entry %d on, more than the %d entries audited: move it away to start over, or audit with --full", a.Events(), st.ActivityFrom, st.Size)
	}
	if first, last, ok := a.IndexRange(); ok && (first < st.ActivityFrom || last >= st.Size) {
		return nil, 0, fmt.Errorf("its activity aggregate names entries %d to %d, outside the %d to %d it covers: move it away to start over, or audit with --full", first, last, st.ActivityFrom, st.Size-1)
	}
	return a, st.ActivityFrom, nil
}

// decoded is what Audit's prepare leaves in a verify.Bundle's Scratch: the
// events of the bundle's entries up to the first that does not decode, and
// that one's position in the bundle (-1 if none) and error.
type decoded struct {
	events []record.Event
	ids    [][32]byte // the events' identities, with site checks (sites.go)
	bad    int
	err    error
}
