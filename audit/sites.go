package audit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/verify"
)

// The kinds of finding about site signatures (docs/site-signing.md),
// reported only when the policy has a sites section. Their Index is the
// event's for unsigned and site-not-allowed, the attestation entry's (with
// no sample) for the others.
const (
	// KindUnsigned: an event at a location whose site had a valid key
	// when it was logged is covered by no attestation.
	KindUnsigned = Kind(site.KindUnsigned)
	// KindBadSiteSignature: an attestation that does not hold: its
	// signature does not verify, it is by a key the policy does not list,
	// or the events before it are not the ones it signed (an event edited
	// after signing, moved out of its batch, or a batch replayed).
	KindBadSiteSignature = Kind(site.KindBadSignature)
	// KindSiteNotAllowed: a site vouched for an event at a location that
	// is not its own.
	KindSiteNotAllowed = Kind(site.KindNotAllowed)
	// KindSiteKeyNotValid: a site key signed outside its validity window,
	// or the attestation was logged too long after (or before) its time.
	KindSiteKeyNotValid = Kind(site.KindKeyNotValid)
)

// SiteSet returns the policy's sites (Policy.Sites) as a site.Set, which
// verifies attestations. A policy without sites gives an empty Set.
func (p *Policy) SiteSet() (*site.Set, error) {
	names := make([]string, 0, len(p.Sites))
	for name := range p.Sites {
		names = append(names, name)
	}
	slices.Sort(names)
	sites := make([]site.Site, 0, len(names))
	for _, name := range names {
		st := p.Sites[name]
		s := site.Site{Name: name, Locations: st.Locations}
		for _, k := range st.Keys {
			s.Keys = append(s.Keys, site.Key{Verifier: k.Key, From: k.From, Until: k.Until})
		}
		sites = append(sites, s)
	}
	set, err := site.NewSet(sites)
	if err != nil {
		return nil, fmt.Errorf("policy sites: %w", err)
	}
	return set, nil
}

// SiteEvidence is an attestation entry, signed into the log, that does not
// hold (bad-site-signature or site-key-not-valid): the entry as logged,
// its index and the checkpoint that commits to it, so that anyone can
// check it against the log and the site's published key.
type SiteEvidence struct {
	Kind       Kind      `json:"kind"`
	Index      uint64    `json:"index"`
	Site       string    `json:"site,omitempty"`
	Detail     string    `json:"detail"`
	Entry      []byte    `json:"entry"`
	Origin     string    `json:"origin"`
	Checkpoint string    `json:"checkpoint"`
	Time       time.Time `json:"time"`
}

// SiteStats counts the site signatures an audit saw.
type SiteStats struct {
	Events       uint64 `json:"events"`
	Signed       uint64 `json:"signed"`
	Attestations uint64 `json:"attestations"`
	Invalid      uint64 `json:"invalid"`
}

// siteAudit feeds an audit's entries to a site.Checker; nil (no sites in
// the policy) skips attestations and checks nothing.
type siteAudit struct {
	c        *site.Checker
	found    []Finding
	evidence []SiteEvidence
}

// newSiteAudit returns the site check of an audit against p's sites, with
// require (AuditOptions.RequireSignatures) every event having to be
// signed; nil when p has no sites and signatures are not required.
func newSiteAudit(p *Policy, origin string, require bool) (*siteAudit, error) {
	if len(p.Sites) == 0 && !require {
		return nil, nil
	}
	set, err := p.SiteSet()
	if err != nil {
		return nil, err
	}
	return &siteAudit{c: site.NewChecker(set, origin, require)}, nil
}

// isAttestation is how Audit's prepare marks an attestation entry among
// the decoded events: an event with no sample, which no valid event has.
func isAttestation(ev *record.Event) bool { return ev.Sample == "" }

// identity appends to ids the attestation-tree leaf of the identity of
// the event whose canonical entry is entry (record.IdentityLeaf; nil: an
// attestation, no identity), for event; it runs on the audit's decoding
// workers, so that both hashes are off the ordered path. Without sites it
// does nothing.
func (s *siteAudit) identity(ids [][32]byte, entry []byte) [][32]byte {
	if s == nil {
		return ids
	}
	var leaf [32]byte
	if entry != nil {
		id, _ := record.EntryIdentity(entry)
		leaf = record.IdentityLeaf(&id)
	}
	return append(ids, leaf)
}

// event adds the event at index, whose identity's leaf is ids[j]
// (identity).
func (s *siteAudit) event(index uint64, ev *record.Event, ids [][32]byte, j int) {
	if s != nil {
		s.add(s.c.AddEventLeaf(index, ev, ids[j]))
	}
}

// attestation adds the attestation entry at index.
func (s *siteAudit) attestation(index uint64, entry []byte) {
	if s != nil {
		s.add(s.c.AddAttestation(index, entry))
	}
}

func (s *siteAudit) add(fs []site.Finding) {
	for _, f := range fs {
		s.found = append(s.found, Finding{Index: f.Index, Sample: f.Sample, Kind: Kind(f.Kind), Detail: f.Detail})
		if f.Attestation != nil {
			s.evidence = append(s.evidence, SiteEvidence{Kind: Kind(f.Kind), Index: f.Index, Site: f.Site, Detail: f.Detail, Entry: f.Attestation})
		}
	}
}

// finish ends the stream and returns fresh (the engine's findings, in
// index order) with the site findings merged in index order, the
// evidence (with origin and checkpoint) and the counts.
func (s *siteAudit) finish(fresh []Finding, origin, checkpoint string) ([]Finding, []SiteEvidence, *SiteStats) {
	if s == nil {
		return fresh, nil, nil
	}
	s.add(s.c.Finish())
	now := time.Now().UTC()
	for i := range s.evidence {
		s.evidence[i].Origin, s.evidence[i].Checkpoint, s.evidence[i].Time = origin, checkpoint, now
	}
	if len(s.found) > 0 {
		fresh = append(fresh, s.found...)
		slices.SortStableFunc(fresh, func(a, b Finding) int { return cmp.Compare(a.Index, b.Index) })
	}
	st := s.c.Stats()
	return fresh, s.evidence, &SiteStats{Events: st.Events, Signed: st.Signed, Attestations: st.Attestations, Invalid: st.Invalid}
}

// WriteSiteEvidence writes each of evidence to dir as
// evidence-site-INDEX.json (mode 0644) and returns the paths.
func WriteSiteEvidence(dir string, evidence []SiteEvidence) ([]string, error) {
	var paths []string
	for _, ev := range evidence {
		b, err := json.MarshalIndent(ev, "", "  ")
		if err != nil {
			return paths, err
		}
		p := filepath.Join(dir, fmt.Sprintf("evidence-site-%d.json", ev.Index))
		if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
			return paths, fmt.Errorf("writing site evidence: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// CheckReceiptSites checks the site signature of a receipt's event (ev,
// from CheckReceipt, which proved r's entry and its attestation's place in
// the log) against the policy's sites: with an attestation, that it is
// signed by a key of set valid at its time, logged in time, covers the
// event (site.CheckTie) and is by the site of the event's location; without
// one, that the event need not be signed (set.Expects). It returns nil or
// a *site.Finding (unsigned, bad-site-signature, site-key-not-valid,
// site-not-allowed), which is a policy finding about the event, not
// evidence against the log.
func CheckReceiptSites(r verify.Receipt, ev record.Event, origin string, set *site.Set) error {
	a := r.Attestation
	if a == nil {
		if set.Expects(ev.Location, ev.Logged) {
			return &site.Finding{Kind: site.KindUnsigned, Index: r.Index, Event: -1, Sample: ev.Sample,
				Detail: fmt.Sprintf("the receipt carries no site attestation, but site %s had a valid key when the event was logged", set.SiteOf(ev.Location))}
		}
		return nil
	}
	return set.VerifyEvent(origin, a.Entry, a.Index, &ev, r.Index, a.Path)
}

// ReceiptSite is what CheckReceiptFileSites says about one receipt's event:
// the site and key that signed it, or that it is unsigned, or the finding
// that makes its signature fail the policy.
type ReceiptSite struct {
	Index uint64 `json:"index"`
	// Site and Key (8 hex digits) signed the event's attestation; both ""
	// for an unsigned event.
	Site string `json:"site,omitempty"`
	Key  string `json:"key,omitempty"`
	// Finding is the failure's kind and detail, "" when the event's
	// signature (or its absence) is what the policy asks.
	Finding string `json:"finding,omitempty"`
}

// CheckReceiptFileSites checks, with CheckReceiptSites, the site signature
// of every receipt of data (receipts as `custody append` prints them) whose
// receipt CheckReceiptFile already found valid, against the sites of set,
// for the log origin, in file order. A bare tlog-proof carries no
// attestation and is not checked (nil). The second result counts the
// receipts with a finding.
func CheckReceiptFileSites(data []byte, origin string, set *site.Set) ([]ReceiptSite, int) {
	if bytes.HasPrefix(data, []byte(verify.TLogProofHeader+"\n")) {
		return nil, 0
	}
	var out []ReceiptSite
	bad := 0
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		var r verify.Receipt
		if len(line) == 0 || json.Unmarshal(line, &r) != nil {
			continue
		}
		ev, err := record.DecodeEntry(r.Entry)
		if err != nil {
			continue
		}
		rs := ReceiptSite{Index: r.Index}
		if r.Attestation != nil {
			if a, err := record.DecodeAttestation(r.Attestation.Entry); err == nil {
				rs.Site, rs.Key = a.Site, fmt.Sprintf("%08x", a.KeyID)
			}
		}
		if err := CheckReceiptSites(r, ev, origin, set); err != nil {
			rs.Finding = err.Error()
			bad++
		}
		out = append(out, rs)
	}
	return out, bad
}

// LoadSiteSet reads the policy file at path (LoadPolicy) and returns its
// sites as a site.Set (SiteSet). A policy without a sites section is an
// error: the caller asked to check site signatures.
func LoadSiteSet(path string) (*site.Set, error) {
	pol, err := LoadPolicy(path)
	if err != nil {
		return nil, err
	}
	if len(pol.Sites) == 0 {
		return nil, &PolicyError{File: path, Path: "sites", Reason: "no sites section: site signatures cannot be checked without the sites' keys (docs/site-signing.md)"}
	}
	return pol.SiteSet()
}

// WriteReceiptSites writes one line per receipt of sites (from
// CheckReceiptFileSites), as `custody verify receipt --policy` prints them:
// "site: entry N signed by site S (key K)", "site: entry N unsigned (no
// site had to sign it)" or "site: entry N: FINDING". Text from the receipts
// is written with terminal control characters escaped.
func WriteReceiptSites(w io.Writer, sites []ReceiptSite) {
	for _, s := range sites {
		switch {
		case s.Finding != "":
			fmt.Fprintf(w, "site: entry %d: %s\n", s.Index, termtext.Clean(s.Finding))
		case s.Site != "":
			fmt.Fprintf(w, "site: entry %d signed by site %s (key %s)\n", s.Index, termtext.Clean(s.Site), s.Key)
		default:
			fmt.Fprintf(w, "site: entry %d unsigned (no site had to sign it)\n", s.Index)
		}
	}
}
