package site

import (
	"fmt"
	"time"

	"github.com/custodylog/custody/record"
)

// Checker checks, in one streaming pass over a log's entries in index
// order, that every event is tied to exactly one valid attestation (or may
// be unsigned), in bounded memory: it remembers at most
// record.MaxAttestedEvents events (about 100 KiB), because an attestation
// covers only the events immediately before it.
//
// The tie rule: an attestation entry at index i with count n covers the
// entries i-n .. i-1, which must all be events not covered by another
// attestation, and whose identities, in index order, have the attestation's
// root. So an event at index j is covered by an attestation at index at
// most j+MaxAttestedEvents or by none, and any attestation entry ends the
// chance of the events before it to be covered.
//
// Feed every entry: AddEvent for events (decoded by record.DecodeEntry),
// AddAttestation for attestation entries (record.KindOf), then Finish.
// Findings come back as soon as they are certain; their Index is the log
// index given. A Checker is not safe for concurrent use.
type Checker struct {
	set        *Set
	origin     string
	requireAll bool

	// pending is a ring of the events not yet covered, oldest first.
	ring      [record.MaxAttestedEvents]pendingEvent
	head, n   int
	stats     CheckerStats
	lastIndex uint64
	started   bool
}

type pendingEvent struct {
	index  uint64
	leaf   [32]byte // record.IdentityLeaf of the event's identity
	loc    string
	sample string
	logged time.Time
}

// CheckerStats counts what a Checker saw.
type CheckerStats struct {
	Events       uint64 // events added
	Signed       uint64 // events covered by a valid attestation
	Attestations uint64 // attestation entries added (valid or not)
	Invalid      uint64 // attestations with a bad-site-signature or site-key-not-valid finding
}

// NewChecker returns a Checker of the log named origin against the sites
// of set. With requireAll, every event must be signed (the log's
// "required" mode); otherwise an event must be signed exactly when
// set.Expects its location at its logged time.
func NewChecker(set *Set, origin string, requireAll bool) *Checker {
	return &Checker{set: set, origin: origin, requireAll: requireAll}
}

// Stats returns the counts so far.
func (c *Checker) Stats() CheckerStats { return c.stats }

// AddEvent adds the event at log index index (ev from record.DecodeEntry,
// so Logged is set). Indexes must increase from one call (of either Add)
// to the next. It returns the findings that became certain: at most one
// unsigned finding, for the oldest pending event when more than
// record.MaxAttestedEvents are pending.
func (c *Checker) AddEvent(index uint64, ev *record.Event) []Finding {
	return c.AddEventIdentity(index, ev, ev.Identity())
}

// AddEventIdentity is AddEvent for a caller that has the event's identity
// already (id is ev.Identity(), for example record.EntryIdentity of its
// entry computed on another core), which saves encoding the event again.
func (c *Checker) AddEventIdentity(index uint64, ev *record.Event, id [32]byte) []Finding {
	return c.AddEventLeaf(index, ev, record.IdentityLeaf(&id))
}

// AddEventLeaf is AddEventIdentity for a caller that has hashed the
// identity into its attestation-tree leaf already (leaf is
// record.IdentityLeaf of it, for example on the core that decoded the
// event), which takes that hash off the caller's ordered path.
func (c *Checker) AddEventLeaf(index uint64, ev *record.Event, leaf [32]byte) []Finding {
	c.order(index)
	c.stats.Events++
	var out []Finding
	if c.n == len(c.ring) {
		out = c.evict(out)
	}
	p := &c.ring[(c.head+c.n)%len(c.ring)]
	c.n++
	p.index, p.leaf, p.loc, p.sample, p.logged = index, leaf, ev.Location, ev.Sample, ev.Logged
	return out
}

func (c *Checker) order(index uint64) {
	if c.started && index <= c.lastIndex {
		panic(fmt.Sprintf("site.Checker: index %d after %d: entries must be added in increasing index order", index, c.lastIndex))
	}
	c.lastIndex, c.started = index, true
}

// evict drops the oldest pending event, reporting it unsigned if it must
// be signed.
func (c *Checker) evict(out []Finding) []Finding {
	p := &c.ring[c.head]
	c.head = (c.head + 1) % len(c.ring)
	c.n--
	if c.requireAll || c.set.Expects(p.loc, p.logged) {
		detail := "covered by no site attestation"
		if !c.requireAll {
			detail += fmt.Sprintf(" though site %s had a valid key when it was logged (%s)", c.set.SiteOf(p.loc), p.logged.UTC().Format(time.RFC3339))
		}
		out = append(out, Finding{Kind: KindUnsigned, Index: p.index, Event: -1, Sample: p.sample, Detail: fmt.Sprintf("event at %s %s", p.loc, detail)})
	}
	p.loc, p.sample = "", ""
	return out
}

// AddAttestation adds the attestation entry at log index index. It
// verifies it (Set.Verify's checks) against the events it covers and
// returns the findings: one bad-site-signature or site-key-not-valid for
// the attestation, or site-not-allowed for each covered event at another
// site's location; then unsigned for each pending event it does not cover
// that must be signed (no later attestation can cover them).
func (c *Checker) AddAttestation(index uint64, entry []byte) []Finding {
	c.order(index)
	c.stats.Attestations++
	var out []Finding
	a, err := record.DecodeAttestation(entry)
	if err != nil {
		c.stats.Invalid++
		out = append(out, Finding{Kind: KindBadSignature, Index: index, Event: -1, Detail: "not a valid attestation: " + err.Error(), Attestation: entry})
		return c.flush(out)
	}
	// The covered events are the last a.Count pending, at indexes
	// index-Count .. index-1.
	n := a.Count
	first := (c.head + c.n - n + len(c.ring)) % len(c.ring)
	last := (c.head + c.n - 1 + len(c.ring)) % len(c.ring)
	if n > c.n || index < uint64(n) || c.ring[last].index != index-1 || c.ring[first].index != index-uint64(n) {
		c.stats.Invalid++
		out = append(out, Finding{Kind: KindBadSignature, Index: index, Event: -1, Site: a.Site, Attestation: entry,
			Detail: fmt.Sprintf("attestation covers the %d entries before it (%d..%d), but they are not all events without an attestation", n, int64(index)-int64(n), int64(index)-1)})
		return c.flush(out)
	}
	var rb record.RootBuilder
	for k := 0; k < n; k++ {
		rb.AddLeaf(c.ring[(first+k)%len(c.ring)].leaf)
	}
	if f := c.set.verify(c.origin, &a, entry, c.ring[last].logged, n, rb.Root()); f != nil {
		c.stats.Invalid++
		f.Index = index
		out = append(out, *f)
	} else {
		owner := c.set.sites[a.Site].name
		for k := 0; k < n; k++ {
			p := &c.ring[(first+k)%len(c.ring)]
			if why := c.set.allowed(owner, p.loc); why != "" {
				out = append(out, Finding{Kind: KindNotAllowed, Index: p.index, Event: k, Sample: p.sample, Site: a.Site, Detail: why})
			}
		}
		c.stats.Signed += uint64(n)
	}
	// The covered events are consumed, valid or not: one finding for the
	// batch is enough.
	for k := 0; k < n; k++ {
		p := &c.ring[(first+k)%len(c.ring)]
		p.loc, p.sample = "", ""
	}
	c.n -= n
	return c.flush(out)
}

// flush evicts every pending event: after an attestation entry none of
// them can be covered any more.
func (c *Checker) flush(out []Finding) []Finding {
	for c.n > 0 {
		out = c.evict(out)
	}
	return out
}

// Finish ends the stream: every pending event is uncovered. It returns
// their unsigned findings. A log that appends each signed batch with its
// attestation in one commit never leaves an event pending at a checkpoint,
// so an audit that stops at a checkpoint and resumes from it later needs
// no Checker state.
func (c *Checker) Finish() []Finding {
	return c.flush(nil)
}
