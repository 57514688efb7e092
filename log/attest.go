package log

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
)

// Group is consecutive events of one submission and, if a site signed
// them, the attestation entry that covers them (site.Attest):
// record.Attestation's count and root are those of exactly these events,
// in this order. A Group without an attestation is unsigned.
type Group struct {
	Events      []record.Event
	Attestation []byte
}

// ErrRejected is wrapped by the errors of Submit and SubmitGroups about
// what was submitted (a *RejectedError): nothing of the submission was
// written, and sending it again fails the same way. The HTTP API answers
// it with 400.
var ErrRejected = errors.New("submission rejected")

// RejectedError says which event of a submission was refused and why.
type RejectedError struct {
	// Event is the event's position in the submission (from 0), or -1
	// when the reason is about an attestation as a whole.
	Event int
	// Sample is the event's sample; "" with Event -1.
	Sample string
	// Err is the reason; a *site.Finding for an attestation that does
	// not hold.
	Err error
}

// Error returns "event N (sample S): REASON" or "REASON".
func (e *RejectedError) Error() string {
	if e.Event < 0 {
		return e.Err.Error()
	}
	reason := e.Err.Error()
	var f *site.Finding
	if errors.As(e.Err, &f) {
		reason = string(f.Kind) + ": " + f.Detail // f numbers events within its batch
	}
	return fmt.Sprintf("event %d (sample %q): %s", e.Event, e.Sample, reason)
}

// Is reports whether target is ErrRejected.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Unwrap returns the reason.
func (e *RejectedError) Unwrap() error { return e.Err }

// SiteMode is what the log does with site signatures (docs/site-signing.md).
type SiteMode string

// The site modes.
const (
	// SitesOff: the log knows no site keys; it refuses signed batches and
	// accepts unsigned events.
	SitesOff SiteMode = "off"
	// SitesOptional: signed batches are verified; unsigned events are still
	// accepted (migration). The audit reports those that its policy
	// expects signed.
	SitesOptional SiteMode = "optional"
	// SitesRequired: every event must be signed.
	SitesRequired SiteMode = "required"
)

// SiteMode returns the log's site mode, from Config.Sites and
// Config.RequireSignatures.
func (l *Log) SiteMode() SiteMode {
	switch {
	case l.cfg.RequireSignatures:
		return SitesRequired
	case l.cfg.Sites != nil && l.cfg.Sites.Len() > 0:
		return SitesOptional
	}
	return SitesOff
}

// Sites returns the site keys the log verifies attestations with (nil:
// none).
func (l *Log) Sites() *site.Set { return l.cfg.Sites }

// pendingAtt is an attestation of a pending submission: it covers the
// events [start, end) of the submission and is appended right after them.
type pendingAtt struct {
	start, end int
	entry      []byte
	id         store.Hash
	slot       slot // where it is (resolved by the sequencer)
}

// attSlot is what the receipts of one signed group share: where its
// attestation is and the identities of the events it covers.
type attSlot struct {
	index uint64
	data  []byte // nil: an existing entry, read from the store
	ids   []store.Hash
	// Filled by the first receipt that needs them.
	tree  *tiles.MemTree
	proof [][]byte
	snap  *snapshot
}

// SubmitGroups is Submit for a submission of groups, signed or not: it
// verifies every attestation (Config.Sites: the key, its window, the
// events' root and their locations) with the log's clock and, with
// Config.RequireSignatures, that every event is signed, before anything
// is queued; then appends each signed group's events followed by its
// attestation as consecutive entries of one commit, in order. A refusal
// wraps ErrRejected (a *RejectedError naming the event and the reason) and
// nothing of the submission is written.
//
// A signed group is all new or all logged already (a retry of the same
// request: its receipts carry the original indexes); a signed group some
// of whose events are logged without its attestation (unsigned, or under
// another) is refused, since its events could not be laid out right before
// their attestation.
func (l *Log) SubmitGroups(ctx context.Context, groups []Group) (*Receipts, error) {
	n := 0
	signed := false
	for _, g := range groups {
		n += len(g.Events)
		signed = signed || g.Attestation != nil
	}
	if n == 0 {
		return &Receipts{l: l}, nil
	}
	p := &pending{events: make([]record.Event, 0, n), ids: make([]store.Hash, 0, n), enq: time.Now(), done: make(chan result, 1)}
	var seen map[store.Hash]int
	if signed {
		seen = make(map[store.Hash]int, n)
	}
	now := l.cfg.Now()
	for _, g := range groups {
		start := len(p.events)
		if len(g.Events) == 0 {
			return nil, &RejectedError{Event: -1, Err: fmt.Errorf("an attestation after event %d covers no event", start)}
		}
		for _, ev := range g.Events {
			i := len(p.events)
			ev.Logged = time.Time{}
			if err := ev.Validate(); err != nil {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			if g.Attestation == nil && l.cfg.RequireSignatures {
				return nil, &RejectedError{Event: i, Sample: ev.Sample, Err: errors.New("unsigned: this log requires every event to be signed by its site (send it with the site's attestation: custody append --site-key)")}
			}
			id := ev.Identity()
			if seen != nil {
				if j, dup := seen[id]; dup {
					return nil, &RejectedError{Event: i, Sample: ev.Sample, Err: fmt.Errorf("the same event as event %d: a signed submission holds distinct events", j)}
				}
				seen[id] = i
			}
			p.events = append(p.events, ev)
			p.ids = append(p.ids, id)
		}
		if g.Attestation == nil {
			continue
		}
		if l.cfg.Sites == nil || l.cfg.Sites.Len() == 0 {
			return nil, &RejectedError{Event: -1, Err: errors.New("this log verifies no site signatures (it was started without site keys: custody serve --sites POLICY): send the events unsigned, or ask the operator to configure the sites")}
		}
		if err := l.cfg.Sites.VerifyIdentities(l.origin, g.Attestation, p.events[start:], p.ids[start:], now); err != nil {
			var f *site.Finding
			if errors.As(err, &f) && f.Event >= 0 {
				return nil, &RejectedError{Event: start + f.Event, Sample: f.Sample, Err: err}
			}
			return nil, &RejectedError{Event: -1, Err: fmt.Errorf("the attestation after event %d: %w", len(p.events)-1, err)}
		}
		p.atts = append(p.atts, pendingAtt{start: start, end: len(p.events), entry: g.Attestation, id: sha256.Sum256(g.Attestation)})
	}
	return l.enqueue(ctx, p)
}

// resolveAtts looks the attestations of p up among the batches being
// committed (l.inflightMu held) and adds the others to ask.
func (l *Log) resolveAtts(p *pending, ask []store.Hash) []store.Hash {
	for k := range p.atts {
		a := &p.atts[k]
		if s, ok := l.inflight[a.id]; ok {
			a.slot = s
		} else {
			a.slot = slot{index: noIndex}
			ask = append(ask, a.id)
		}
	}
	return ask
}

// placeSigned sequences a submission with attestations: its events (slots
// resolved against the batches in flight, or noIndex) and attestations
// get their indexes from next on, each signed group followed by its
// attestation; existing and fresh are the store's and the batch's
// identities so far. It returns the new entries, or a *RejectedError (and
// no entries) for a signed group that is partly logged already.
func (l *Log) placeSigned(p *pending, slots []slot, existing map[store.Hash]uint64, fresh map[store.Hash]slot, next uint64, logged time.Time) ([]store.Entry, error) {
	resolve := func(id store.Hash, s slot) (slot, bool) {
		if s.index != noIndex {
			return s, true
		}
		if idx, ok := existing[id]; ok {
			return slot{index: idx}, true
		}
		if s, ok := fresh[id]; ok {
			return s, true
		}
		return s, false
	}
	// First decide, for every signed group, whether it is new or logged.
	old := make([]bool, len(p.atts))
	for k := range p.atts {
		a := &p.atts[k]
		_, logged := resolve(a.id, a.slot)
		for j := a.start; j < a.end; j++ {
			if _, ok := resolve(p.ids[j], slots[j]); ok != logged {
				what := "is logged already, but the attestation covering it is not"
				if logged {
					what = "is not logged, but the attestation covering it is"
				}
				return nil, &RejectedError{Event: j, Sample: p.events[j].Sample, Err: fmt.Errorf("%s: sign only new events", what)}
			}
		}
		old[k] = logged
	}
	var entries []store.Entry
	add := func(id store.Hash, sample string, data []byte) slot {
		e := store.Entry{Index: next + uint64(len(entries)), Identity: id, LeafHash: tiles.LeafHash(data), Sample: sample, Data: data}
		entries = append(entries, e)
		s := slot{index: e.Index, data: data}
		fresh[id] = s
		return s
	}
	k := 0
	for j := 0; j < len(p.events); j++ {
		if k < len(p.atts) && j == p.atts[k].start {
			a := &p.atts[k]
			as := &attSlot{ids: p.ids[a.start:a.end]}
			for m := a.start; m < a.end; m++ {
				if old[k] {
					slots[m], _ = resolve(p.ids[m], slots[m])
				} else {
					ev := p.events[m]
					ev.Logged = logged
					slots[m] = add(p.ids[m], ev.Sample, ev.Canonical())
				}
				slots[m].att, slots[m].pos = as, m-a.start
			}
			if old[k] {
				a.slot, _ = resolve(a.id, a.slot)
			} else {
				a.slot = add(a.id, "", a.entry)
			}
			as.index, as.data = a.slot.index, a.slot.data
			j = a.end - 1
			k++
			continue
		}
		if s, ok := resolve(p.ids[j], slots[j]); ok {
			slots[j] = s
			continue
		}
		ev := p.events[j]
		ev.Logged = logged
		slots[j] = add(p.ids[j], ev.Sample, ev.Canonical())
	}
	return entries, nil
}

// attestation returns the attestation part of the receipt of the event in
// slot s, against snap.
func (r *Receipts) attestation(ctx context.Context, s slot) (*verify.ReceiptAttestation, error) {
	a := s.att
	if a.data == nil {
		es, err := r.l.st.Entries(ctx, a.index, a.index+1)
		if err != nil || len(es) != 1 {
			if err == nil {
				err = errors.New("not in the store")
			}
			return nil, fmt.Errorf("%w: reading attestation entry %d: %w", ErrUnavailable, a.index, err)
		}
		a.data = es[0].Data
	}
	if a.proof == nil || a.snap != r.snap {
		proof, err := r.l.inclusion(ctx, r.snap, a.index, r.snap.cp.Size)
		if err != nil {
			return nil, err
		}
		a.proof, a.snap = proof, r.snap
	}
	if a.tree == nil {
		a.tree = attTree(a.ids)
	}
	return &verify.ReceiptAttestation{Index: a.index, Entry: a.data, Proof: a.proof, Path: attPath(a.tree, s.pos)}, nil
}

// attTree returns the RFC 6962 tree of the identities ids as leaf data
// (record.AttestationRoot's), held whole so that every event's path is
// read from it without hashing again.
func attTree(ids []store.Hash) *tiles.MemTree {
	leaves := make([]tiles.Hash, len(ids))
	for i := range ids {
		leaves[i] = tiles.LeafHash(ids[i][:])
	}
	return tiles.NewMemTree(leaves)
}

// attPath returns the audit path of leaf m (record.AttestationPath) in
// the tree of attTree, as the receipt carries it.
func attPath(t *tiles.MemTree, m int) [][]byte {
	p := t.Path(m)
	path := make([][]byte, len(p))
	for i := range p {
		path[i] = p[i][:]
	}
	return path
}

// refuseFailed answers the submissions the sequencer refused (p.err) and
// returns the others with their slots.
func refuseFailed(batch []*pending, slots [][]slot) ([]*pending, [][]slot) {
	n := 0
	for i, p := range batch {
		if p.err != nil {
			p.done <- result{err: p.err}
			continue
		}
		batch[n], slots[n] = p, slots[i]
		n++
	}
	return batch[:n], slots[:n]
}
