package site

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/custodylog/custody/record"
)

// MaxAttestationAge is how long after an attestation's time the log may
// accept its batch (and how much older than the batch's logged time the
// audit lets it be). It bounds backdating: a key revoked at Until can sign
// with an earlier time, but the log and the audit refuse such a batch once
// MaxAttestationAge after Until has passed.
const MaxAttestationAge = 15 * time.Minute

// MaxClockSkew is how far an attestation's time may be after the time the
// log accepted its batch.
const MaxClockSkew = record.MaxFutureSkew

// Key is one key of a site and when it may sign.
type Key struct {
	// Verifier is the site's verifier key string, NAME+HASH+BASE64
	// (ParseVerifierKey); NAME is the site's name.
	Verifier string
	// From is the first instant the key may sign (attestation time).
	From time.Time
	// Until is the instant from which the key may no longer sign; zero:
	// no end. Attestations signed before Until stay valid after it, so
	// rotating or revoking a key never invalidates history.
	Until time.Time
}

// Site is a site of the routing policy: a data centre (or campus) whose
// key vouches for the events at its locations.
type Site struct {
	// Name is [a-z0-9-]{2,32}, the name in its keys.
	Name string
	// Locations are the event locations the site may speak for. A location
	// belongs to at most one site.
	Locations []string
	// Keys are the site's keys, current and past; windows may overlap (key
	// rotation), key hashes must differ.
	Keys []Key
}

// Set is the sites of a routing policy, ready to verify attestations. It
// is read-only after NewSet and safe for concurrent use.
type Set struct {
	sites    map[string]*siteKeys
	location map[string]string // location -> site
}

type siteKeys struct {
	name string
	keys []setKey
}

type setKey struct {
	id          uint32
	pub         ed25519.PublicKey
	from, until time.Time
}

// NewSet checks sites and returns the Set: every name a valid site name
// and unique, every key a valid verifier key named for its site with a
// non-zero From before its Until (if set) and a hash unique within the
// site, every location a valid location name claimed by one site only.
// An empty Set (no sites) is valid: it verifies nothing and expects no
// signature.
func NewSet(sites []Site) (*Set, error) {
	s := &Set{sites: make(map[string]*siteKeys, len(sites)), location: make(map[string]string)}
	for _, st := range sites {
		if err := record.CheckSite(st.Name); err != nil {
			return nil, fmt.Errorf("site %q: %w", st.Name, err)
		}
		if _, dup := s.sites[st.Name]; dup {
			return nil, fmt.Errorf("site %q listed twice", st.Name)
		}
		if len(st.Locations) == 0 {
			return nil, fmt.Errorf("site %q: no locations: want at least one it may speak for", st.Name)
		}
		for _, loc := range st.Locations {
			if err := record.CheckSite(loc); err != nil {
				return nil, fmt.Errorf("site %q: location %q: not a valid location name", st.Name, loc)
			}
			if other, dup := s.location[loc]; dup {
				return nil, fmt.Errorf("site %q: location %q already belongs to site %q", st.Name, loc, other)
			}
			s.location[loc] = st.Name
		}
		if len(st.Keys) == 0 {
			return nil, fmt.Errorf("site %q: no keys", st.Name)
		}
		sk := &siteKeys{name: st.Name}
		for i, k := range st.Keys {
			v, pub, err := ParseVerifierKey(k.Verifier)
			if err != nil {
				return nil, fmt.Errorf("site %q: key %d: %w", st.Name, i, err)
			}
			if v.Name() != st.Name {
				return nil, fmt.Errorf("site %q: key %d is for site %q", st.Name, i, v.Name())
			}
			if k.From.IsZero() {
				return nil, fmt.Errorf("site %q: key %d: from is required", st.Name, i)
			}
			if !k.Until.IsZero() && !k.Until.After(k.From) {
				return nil, fmt.Errorf("site %q: key %d: until %s is not after from %s", st.Name, i, k.Until.UTC().Format(time.RFC3339), k.From.UTC().Format(time.RFC3339))
			}
			for _, o := range sk.keys {
				if o.id == v.KeyHash() {
					return nil, fmt.Errorf("site %q: key %d has the same key hash %08x as another key of the site: generate a new key", st.Name, i, o.id)
				}
			}
			sk.keys = append(sk.keys, setKey{id: v.KeyHash(), pub: pub, from: k.From, until: k.Until})
		}
		s.sites[st.Name] = sk
	}
	return s, nil
}

// Len returns the number of sites.
func (s *Set) Len() int { return len(s.sites) }

// SiteOf returns the site that may speak for location, or "" if none.
func (s *Set) SiteOf(location string) string { return s.location[location] }

// Names returns the sites' names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.sites))
	for n := range s.sites {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Expects reports whether an event at location logged at t must be
// signed: some site speaks for location and has a key valid at t. Before
// a site's first key (and for locations no site speaks for) unsigned
// events are expected, which is how a log migrates: old unsigned history
// stays valid.
func (s *Set) Expects(location string, t time.Time) bool {
	name, ok := s.location[location]
	if !ok {
		return false
	}
	for _, k := range s.sites[name].keys {
		if k.valid(t) {
			return true
		}
	}
	return false
}

func (k *setKey) valid(t time.Time) bool {
	return !t.Before(k.from) && (k.until.IsZero() || t.Before(k.until))
}

// Kind is the kind of a Finding; its value is the finding kind the audit
// and fsck report.
type Kind string

// The kinds of finding.
const (
	// KindUnsigned: an event that must be signed (Set.Expects, or every
	// event when the log requires signatures) is covered by no
	// attestation.
	KindUnsigned Kind = "unsigned"
	// KindBadSignature: an attestation that does not hold: malformed, for
	// another log, by an unknown site or key, a signature that does not
	// verify, or a root or count that does not match the events before
	// it (an event edited after signing, moved, or a batch replayed).
	KindBadSignature Kind = "bad-site-signature"
	// KindNotAllowed: a site vouches for an event at a location that is
	// not its own.
	KindNotAllowed Kind = "site-not-allowed"
	// KindKeyNotValid: the key signed outside its validity window, or the
	// attestation's time is not credible given when it was logged.
	KindKeyNotValid Kind = "site-key-not-valid"
)

// Finding is what Verify and the Checker report. It is an error.
type Finding struct {
	Kind Kind
	// Index is the log index of the entry at fault: the event for
	// unsigned and site-not-allowed, the attestation for the others.
	// Verify, which sees a batch before it has indexes, leaves it 0.
	Index uint64
	// Event is the position, in the batch given to Verify or covered by
	// the attestation, of the event at fault; -1 when the finding is about
	// the attestation as a whole.
	Event int
	// Sample is the sample of the event at fault; "" with Event -1.
	Sample string
	// Site is the site that signed (as the attestation says), "" for
	// unsigned.
	Site string
	// Detail says what failed, for people.
	Detail string
	// Attestation is the attestation's entry for bad-site-signature and
	// site-key-not-valid (evidence to keep), nil otherwise.
	Attestation []byte
}

// Error returns "KIND: [event N (sample S): ]DETAIL".
func (f *Finding) Error() string {
	var b strings.Builder
	b.WriteString(string(f.Kind))
	b.WriteString(": ")
	if f.Event >= 0 {
		fmt.Fprintf(&b, "event %d (sample %q): ", f.Event, f.Sample)
	}
	b.WriteString(f.Detail)
	return b.String()
}

// Verify checks that entry, an attestation entry, vouches for events (the
// batch it covers, in log order) in the log named origin, with the batch
// logged (or, at append, received) at logged. It returns nil or a
// *Finding, checking in this order:
//
//  1. bad-site-signature: entry does not decode (record.DecodeAttestation),
//     names another origin, an unknown site or key, or its signature does
//     not verify;
//  2. site-key-not-valid: its time is outside the key's window, or logged
//     is more than MaxClockSkew before or MaxAttestationAge after it;
//  3. bad-site-signature: its count or root does not match events;
//  4. site-not-allowed: an event's location (for a transfer, the source)
//     is not one of the site's (the first such event is named).
//
// The log calls it at append with logged = its clock: any finding is a
// 400 naming the event and the reason, with nothing written.
func (s *Set) Verify(origin string, entry []byte, events []record.Event, logged time.Time) error {
	return s.VerifyIdentities(origin, entry, events, nil, logged)
}

// VerifyIdentities is Verify for a caller that has the events' identities
// already (ids[i] is events[i].Identity(); nil: computed here), as the log
// has at append: it saves hashing every event again.
func (s *Set) VerifyIdentities(origin string, entry []byte, events []record.Event, ids [][32]byte, logged time.Time) error {
	a, err := record.DecodeAttestation(entry)
	if err != nil {
		return &Finding{Kind: KindBadSignature, Event: -1, Detail: "not a valid attestation: " + err.Error(), Attestation: entry}
	}
	var rb record.RootBuilder
	if len(events) > record.MaxAttestedEvents || ids != nil && len(ids) != len(events) {
		return &Finding{Kind: KindBadSignature, Event: -1, Site: a.Site, Detail: fmt.Sprintf("attestation signs %d events, but %d were given", a.Count, len(events)), Attestation: entry}
	}
	for i := range events {
		if ids != nil {
			rb.Add(&ids[i])
			continue
		}
		id := events[i].Identity()
		rb.Add(&id)
	}
	if f := s.verify(origin, &a, entry, logged, len(events), rb.Root()); f != nil {
		return f
	}
	sk := s.sites[a.Site]
	for i := range events {
		if f := s.allowed(sk.name, events[i].Location); f != "" {
			return &Finding{Kind: KindNotAllowed, Event: i, Sample: events[i].Sample, Site: a.Site, Detail: f}
		}
	}
	return nil
}

// allowed returns "" if site may speak for loc, or why not.
func (s *Set) allowed(site, loc string) string {
	owner, ok := s.location[loc]
	switch {
	case owner == site:
		return ""
	case ok:
		return fmt.Sprintf("site %s vouches for an event at %s, which is site %s's location", site, loc, owner)
	}
	return fmt.Sprintf("site %s vouches for an event at %s, which no site of the policy speaks for", site, loc)
}

// verify runs checks 1 to 3 of Verify on a decoded attestation; count and
// root are those of the events it should cover.
func (s *Set) verify(origin string, a *record.Attestation, entry []byte, logged time.Time, count int, root [32]byte) *Finding {
	bad := func(kind Kind, format string, args ...any) *Finding {
		return &Finding{Kind: kind, Event: -1, Site: a.Site, Detail: fmt.Sprintf(format, args...), Attestation: entry}
	}
	if a.Origin != origin {
		return bad(KindBadSignature, "attestation is for the log %q, not %q (replayed from another log?)", a.Origin, origin)
	}
	sk, ok := s.sites[a.Site]
	if !ok {
		return bad(KindBadSignature, "signed by site %q, which the policy does not list", a.Site)
	}
	var key *setKey
	for i := range sk.keys {
		if sk.keys[i].id == a.KeyID {
			key = &sk.keys[i]
			break
		}
	}
	if key == nil {
		return bad(KindBadSignature, "signed by key %08x, which is not a key of site %s in the policy", a.KeyID, a.Site)
	}
	// DecodeAttestation checked that entry is a.Entry(): the text ends at
	// the empty line before the signature.
	text := entry[:bytes.Index(entry, []byte("\n\n\u2014 "))+1]
	if !ed25519.Verify(key.pub, text, a.Signature[:]) {
		return bad(KindBadSignature, "the signature by site %s key %08x does not verify", a.Site, a.KeyID)
	}
	if !key.valid(a.Time) {
		until := "no end"
		if !key.until.IsZero() {
			until = key.until.UTC().Format(time.RFC3339)
		}
		return bad(KindKeyNotValid, "signed at %s by site %s key %08x, valid from %s until %s", a.Time.Format(time.RFC3339), a.Site, a.KeyID, key.from.UTC().Format(time.RFC3339), until)
	}
	if d := logged.Sub(a.Time); d > MaxAttestationAge {
		return bad(KindKeyNotValid, "signed at %s but logged at %s, %v later, more than %v: an attestation must be logged promptly (a revoked key could backdate)", a.Time.Format(time.RFC3339), logged.UTC().Format(time.RFC3339), d, MaxAttestationAge)
	} else if -d > MaxClockSkew {
		return bad(KindKeyNotValid, "signed at %s, %v after it was logged at %s, more than the allowed skew of %v", a.Time.Format(time.RFC3339), -d, logged.UTC().Format(time.RFC3339), MaxClockSkew)
	}
	if a.Count != count {
		return bad(KindBadSignature, "attestation covers %d events, but %d precede it in its batch", a.Count, count)
	}
	if a.Root != root {
		return bad(KindBadSignature, "the %d events do not match the signed root: an event was changed after signing, or the events were reordered or replaced", count)
	}
	return nil
}
