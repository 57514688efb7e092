package dashboard

import (
	"fmt"
	"strings"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/record"
	sitepkg "github.com/custodylog/custody/site"
	"github.com/custodylog/custody/store"
)

// siteCheck is the built-in audit's check of site signatures
// (sitepkg.Checker over the same entries as the policy engine); nil when the
// policy has no sites.
type siteCheck struct{ c *sitepkg.Checker }

func newSiteCheck(p *audit.Policy, origin string) *siteCheck {
	if p == nil || len(p.Sites) == 0 {
		return nil
	}
	set, err := p.SiteSet()
	if err != nil {
		return nil // ParsePolicy checked the sites; a Policy built in code may not be
	}
	return &siteCheck{sitepkg.NewChecker(set, origin, false)}
}

// entry feeds the entry e (ev decoded, or nil for an attestation) to the
// check and returns its findings.
func (s *siteCheck) entry(e store.Entry, ev *record.Event) []audit.Finding {
	if s == nil {
		return nil
	}
	if ev == nil {
		return findings(s.c.AddAttestation(e.Index, e.Data))
	}
	return findings(s.c.AddEventIdentity(e.Index, ev, e.Identity))
}

// settle ends the pending events at a published size: signed batches never
// straddle one, so those still uncovered are unsigned.
func (s *siteCheck) settle() []audit.Finding {
	if s == nil {
		return nil
	}
	return findings(s.c.Finish())
}

func findings(fs []sitepkg.Finding) []audit.Finding {
	var out []audit.Finding
	for _, f := range fs {
		out = append(out, audit.Finding{Index: f.Index, Sample: f.Sample, Kind: audit.Kind(f.Kind), Detail: f.Detail})
	}
	return out
}

// siteView is one site of the policy as the front page lists it.
type siteView struct {
	Name      string
	Locations []string
	Keys      []siteKeyView
}

type siteKeyView struct {
	Key         string // the verifier key string
	From, Until string // RFC 3339; Until "" for no end
	Valid       bool   // the key may sign now
}

// sitesView lists the policy's sites, sorted by name, with their keys'
// windows as of now.
func sitesView(p *audit.Policy, now time.Time) []siteView {
	if p == nil {
		return nil
	}
	var out []siteView
	for _, name := range sortedKeys(setOf(p.Sites)) {
		st := p.Sites[name]
		v := siteView{Name: name, Locations: st.Locations}
		for _, k := range st.Keys {
			kv := siteKeyView{Key: k.Key, From: k.From.UTC().Format(time.RFC3339), Valid: !now.Before(k.From) && (k.Until.IsZero() || now.Before(k.Until))}
			if !k.Until.IsZero() {
				kv.Until = k.Until.UTC().Format(time.RFC3339)
			}
			v.Keys = append(v.Keys, kv)
		}
		out = append(out, v)
	}
	return out
}

func setOf[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// markSignatures sets the Signature of the listed events (views, with the
// entries es they come from, in index order; attestation entries have no
// view) from the attestations among es: "signed by SITE" when one covers
// the event and, with the policy's sites, verifies (else "site signature
// fails: KIND"); "unsigned" when none does and the policy has sites (or
// the log holds attestations). Events whose attestation is past the window
// show nothing.
func markSignatures(views map[uint64]*eventView, es []store.Entry, evs []*record.Event, set *sitepkg.Set, origin string) {
	any := set != nil && set.Len() > 0
	covered := map[uint64]bool{}
	for i, e := range es {
		if evs[i] != nil {
			continue
		}
		any = true
		a, err := record.DecodeAttestation(e.Data)
		if err != nil || uint64(a.Count) > e.Index {
			continue
		}
		first := e.Index - uint64(a.Count)
		mark := "signed by site " + a.Site
		if set != nil && set.Len() > 0 {
			batch := make([]record.Event, 0, a.Count)
			for j := i - a.Count; j >= 0 && j < i && evs[j] != nil; j++ {
				batch = append(batch, *evs[j])
			}
			if len(batch) == a.Count {
				if err := set.Verify(origin, e.Data, batch, batch[len(batch)-1].Logged); err != nil {
					if f, ok := err.(*sitepkg.Finding); ok {
						mark = fmt.Sprintf("site signature fails: %s", f.Kind)
					}
				}
			}
		}
		for k := first; k < e.Index; k++ {
			covered[k] = true
			if v := views[k]; v != nil {
				v.Signature = mark
			}
		}
	}
	if !any {
		return
	}
	for k, v := range views {
		if v.Signature == "" && !covered[k] {
			v.Signature = "unsigned"
		}
	}
}

// SigClass is the style of the Signature: ok, bad or muted.
func (v eventView) SigClass() string {
	switch {
	case v.Signature == "unsigned":
		return "muted"
	case strings.HasPrefix(v.Signature, "signed by"):
		return "ok"
	}
	return "bad"
}
