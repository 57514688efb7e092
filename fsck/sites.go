package fsck

import (
	"crypto/sha256"
	"fmt"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/store"
)

// Problems of site signatures (docs/site-signing.md), checked when
// Options.Sites is set: the same findings as the audit's.
const (
	KindUnsigned         = Kind(site.KindUnsigned)     // an event that must be signed is covered by no attestation
	KindBadSiteSignature = Kind(site.KindBadSignature) // an attestation that does not hold (signature, key, or the events before it)
	KindSiteNotAllowed   = Kind(site.KindNotAllowed)   // a site vouched for another site's location
	KindSiteKeyNotValid  = Kind(site.KindKeyNotValid)  // a site key signed outside its window
)

// phaseSite orders an entry's site problems after its other problems.
const phaseSite = phaseLeaf + 1

// siteItem is an entry the site check needs, kept by a worker for the
// goroutine that checks the site signatures in index order: an event, or
// an attestation entry (att set).
type siteItem struct {
	index uint64
	ev    record.Event
	id    [32]byte
	att   []byte
}

// checkAttestationEntry checks the columns of the attestation entry en
// (an entry that starts with record.AttestationHeader): its identity is
// the SHA-256 of its data and it has no sample. Whether it holds is the
// site check's (Options.Sites).
func (c *checker) checkAttestationEntry(r *pageResult, en *store.Entry, add func(a at, kind Kind, format string, args ...any)) {
	a := at{en.Index, phaseEntry}
	if id := sha256.Sum256(en.Data); id != en.Identity {
		add(a, KindIdentity, "stored %s, computed %s (SHA-256 of the attestation entry)", short(en.Identity), short(id))
		r.judged = append(r.judged, judged{en.Index, 1 << store.LookupIdentity})
	}
	if en.Sample != "" {
		add(a, KindSample, "stored %q, but an attestation entry has no sample", en.Sample)
	}
	if c.sites != nil {
		r.sites = append(r.sites, siteItem{index: en.Index, att: en.Data})
	}
}

// keepEvent keeps the event at index, whose identity is id, for the site
// check.
func (c *checker) keepEvent(r *pageResult, index uint64, ev *record.Event, id [32]byte) {
	if c.sites != nil {
		r.sites = append(r.sites, siteItem{index: index, ev: *ev, id: id})
	}
}

// checkSites feeds the entries of a page, in index order, to the site
// checker.
func (c *checker) checkSites(r *pageResult) {
	if c.sites == nil {
		return
	}
	for i := range r.sites {
		it := &r.sites[i]
		if it.att != nil {
			c.siteFindings(c.sites.AddAttestation(it.index, it.att))
		} else {
			c.siteFindings(c.sites.AddEventIdentity(it.index, &it.ev, it.id))
		}
	}
	r.sites = nil
}

// finishSites ends the site check.
func (c *checker) finishSites() {
	if c.sites != nil {
		c.siteFindings(c.sites.Finish())
	}
}

func (c *checker) siteFindings(fs []site.Finding) {
	for _, f := range fs {
		detail := f.Detail
		if f.Sample != "" {
			detail = fmt.Sprintf("sample %q: %s", f.Sample, detail)
		}
		c.add(at{f.Index, phaseSite}, Kind(f.Kind), fmt.Sprintf("entry %d", f.Index), "%s", detail)
	}
}
