package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/client"
	"github.com/custodylog/custody/internal/keyfile"
	"github.com/custodylog/custody/internal/plant"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/server"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/store/sqlite"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// demoSites are the simulated data centres' site keys: every location of
// the demo policy is a site of its own name, whose key (in DIR/sites/)
// signs the events that happen there (docs/site-signing.md).
type demoSites struct {
	signers map[string]site.Signer // location -> its site's signer
	// forged is the planted event's entry and its attestation's
	// (entries 0 and 1), after plantForged.
	forged [2][]byte
}

// setupSites makes a site key pair per location of the policy in
// dir/sites/LOCATION.key and .pub, and appends to the policy file the
// sites section listing them, valid from an hour ago.
func setupSites(dir, policyFile string) (*demoSites, error) {
	pol, err := audit.LoadPolicy(policyFile)
	if err != nil {
		return nil, err
	}
	var locations []string
	for loc := range pol.Locations {
		locations = append(locations, loc)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sites"), 0o700); err != nil {
		return nil, err
	}
	from := time.Now().UTC().Truncate(time.Second).Add(-time.Hour).Format(time.RFC3339)
	s := &demoSites{signers: map[string]site.Signer{}}
	var b strings.Builder
	b.WriteString("sites:                     # each data centre signs its own events (docs/site-signing.md)\n")
	sort.Strings(locations)
	for _, loc := range locations {
		prefix := filepath.Join(dir, "sites", loc)
		vkey, err := keyfile.WriteSite(prefix, loc)
		if err != nil {
			return nil, err
		}
		if s.signers[loc], err = keyfile.LoadSite(prefix + ".key"); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  %s:\n    locations: [%s]\n    keys:\n      - {key: %s, from: %s}\n", loc, loc, vkey, from)
	}
	f, err := os.OpenFile(policyFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return nil, err
	}
	return s, f.Close()
}

// pick returns the signer of the site of location (nil: none).
func (s *demoSites) pick(location string) site.Signer { return s.signers[location] }

// plantForged writes into the new log in dir, past the log's checks (as an
// operator bypassing its own server could), an event that claims ch-zrh-1
// but is signed by the ru-mow-1 site's key: a sample handled in Moscow and
// recorded as Zurich, which the log would refuse at append. It returns the
// violation's description.
func (s *demoSites) plantForged(ctx context.Context, dir string, v note.Verifier) (string, error) {
	signer, err := keyfile.LoadSigner(filepath.Join(dir, server.KeyFile))
	if err != nil {
		return "", err
	}
	now := time.Now().UTC().Truncate(time.Second)
	ev := record.Event{Sample: "smp-eu-forged", Action: record.Collected, Location: "ch-zrh-1", Region: "EU",
		Time: now.Add(-time.Minute), Actor: "lims", Note: "recorded as Zurich, signed with the Moscow site's key"}
	_, att, err := site.Attest(s.signers["ru-mow-1"], nil, v.Name(), now, []record.Event{ev})
	if err != nil {
		return "", err
	}
	ev.Logged = now
	st, err := sqlite.Open(filepath.Join(dir, server.DBFile))
	if err != nil {
		return "", err
	}
	defer st.Close()
	s.forged = [2][]byte{ev.Canonical(), att}
	if _, err := plant.Plant(ctx, st, signer, v, s.forged[:]); err != nil {
		return "", err
	}
	return ev.Sample + " claims ch-zrh-1 but is signed by the ru-mow-1 site's key (planted in the store past the log's checks)", nil
}

// writeForgedReceipt writes to path the receipt of the planted event
// (entry 0, with its attestation at entry 1), built from the log's own
// checkpoint and inclusion proofs at base, so that `custody verify receipt
// --policy` shows its site signature fail the policy.
func (s *demoSites) writeForgedReceipt(ctx context.Context, base, path string, v note.Verifier) error {
	r := client.NewReader(base)
	signed, err := r.Get(ctx, "/checkpoint")
	if err != nil {
		return err
	}
	cp, _, err := verify.OpenCheckpoint(signed, v.Name(), note.VerifierList(v))
	if err != nil {
		return err
	}
	var proofs [2]struct{ Proof [][]byte }
	for i := range proofs {
		if err := r.GetJSON(ctx, fmt.Sprintf("/v1/proof/inclusion?index=%d&size=%d", i, cp.Size), &proofs[i]); err != nil {
			return err
		}
	}
	leaf := verify.LeafHash(s.forged[0])
	rc := verify.Receipt{Index: 0, LeafHash: leaf[:], Entry: s.forged[0], Event: s.forged[0], Checkpoint: string(signed), Proof: proofs[0].Proof,
		Attestation: &verify.ReceiptAttestation{Index: 1, Entry: s.forged[1], Proof: proofs[1].Proof}}
	b, err := json.Marshal(rc)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
