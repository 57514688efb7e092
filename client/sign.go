package client

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/site"
)

// siteSigner signs what a Client sends (WithSiteSigner).
type siteSigner struct {
	s      site.Signer
	pub    ed25519.PublicKey
	origin string
	now    func() time.Time
	// pick, if set (WithSiteSigners), chooses the signer of each event's
	// location instead of s.
	pick func(location string) site.Signer
}

// WithSiteSigner makes the Client sign every batch it sends as the site s
// (docs/site-signing.md): each request carries, after its events (at most
// record.MaxAttestedEvents at a time), the attestation line that covers
// them, and every receipt must carry that attestation with the event's
// path to its root. origin is the log's origin ("" for the log key's
// name, which only New has). pub, if not nil, is the site's public key,
// against which every signature is checked before it is sent (for
// hardware signers: site.Attest).
func WithSiteSigner(s site.Signer, pub ed25519.PublicKey, origin string) Option {
	return func(c *Client) { c.site = &siteSigner{s: s, pub: pub, origin: origin, now: time.Now} }
}

// WithSiteSigners makes the Client sign what it sends as the sites pick
// chooses for each event's location (for a transfer, its source): each
// run of consecutive events with the same signer, at most
// record.MaxAttestedEvents, gets its own attestation line, as
// WithSiteSigner does for one site. pick returning nil for a location
// fails the batch before anything is sent. It is for a gateway that
// submits for several sites (and the demo, whose data centres each sign
// their own events).
func WithSiteSigners(pick func(location string) site.Signer, origin string) Option {
	return func(c *Client) { c.site = &siteSigner{pick: pick, origin: origin, now: time.Now} }
}

// AttestationLine returns the JSON line, {"attestation": ENTRY}, that
// follows the events an attestation entry covers in a POST /v1/events
// body (and in `custody sign`'s output).
func AttestationLine(entry []byte) []byte {
	b, _ := json.Marshal(struct {
		Attestation string `json:"attestation"`
	}{string(entry)})
	return b
}

// Sign returns the lines of a signed submission of events (canonical JSON
// lines, each group of at most record.MaxAttestedEvents followed by its
// AttestationLine), signed by s at now for the log origin. pub is as for
// site.Attest.
func Sign(s site.Signer, pub ed25519.PublicKey, origin string, now time.Time, events []record.Event) ([][]byte, error) {
	lines := make([][]byte, 0, len(events)+len(events)/record.MaxAttestedEvents+1)
	for start := 0; start < len(events); start += record.MaxAttestedEvents {
		group := events[start:min(start+record.MaxAttestedEvents, len(events))]
		_, entry, err := site.Attest(s, pub, origin, now, group)
		if err != nil {
			return nil, fmt.Errorf("events %d to %d: %w", start, start+len(group)-1, err)
		}
		for i := range group {
			lines = append(lines, group[i].Canonical())
		}
		lines = append(lines, AttestationLine(entry))
	}
	return lines, nil
}

// sign returns the lines to send for one batch (events lines with
// identities ids) and the attestation entry covering each event; without
// a site signer, lines as they are.
func (c *Client) sign(lines [][]byte, ids [][32]byte) ([][]byte, [][]byte, error) {
	if c.site == nil {
		return lines, nil, nil
	}
	origin := c.site.origin
	if origin == "" {
		origin = c.origin
	}
	if origin == "" {
		return nil, nil, errors.New("client: WithSiteSigner needs the log's origin (or a log key: New)")
	}
	now := c.site.now()
	signers, err := c.site.signers(lines)
	if err != nil {
		return nil, nil, err
	}
	out := make([][]byte, 0, len(lines)+len(lines)/record.MaxAttestedEvents+1)
	atts := make([][]byte, len(lines))
	for start, end := 0, 0; start < len(lines); start = end {
		end = start + 1
		for end < len(lines) && end-start < record.MaxAttestedEvents && signers[end] == signers[start] {
			end++
		}
		_, entry, err := site.AttestRoot(signers[start], c.site.pub, origin, now, end-start, record.AttestationRoot(ids[start:end]))
		if err != nil {
			return nil, nil, fmt.Errorf("client: signing events %d to %d: %w", start, end-1, err)
		}
		out = append(out, lines[start:end]...)
		out = append(out, AttestationLine(entry))
		for i := start; i < end; i++ {
			atts[i] = entry
		}
	}
	return out, atts, nil
}

// signers returns the signer of each line's event.
func (s *siteSigner) signers(lines [][]byte) ([]site.Signer, error) {
	out := make([]site.Signer, len(lines))
	for i, l := range lines {
		if s.pick == nil {
			out[i] = s.s
			continue
		}
		ev, err := record.Decode(l)
		if err != nil {
			return nil, fmt.Errorf("client: event %d: %w", i, err)
		}
		if out[i] = s.pick(ev.Location); out[i] == nil {
			return nil, fmt.Errorf("client: event %d: no site signs for location %s", i, ev.Location)
		}
	}
	return out, nil
}

// checkSigned checks that every receipt of a signed batch carries the
// attestation sent with its event and the event's path to its root.
func checkSigned(rs []Receipt, ids [][32]byte, atts [][]byte, offset int) error {
	if atts == nil {
		return nil
	}
	for i := range rs {
		a := rs[i].Attestation
		if a == nil || !bytes.Equal(a.Entry, atts[i]) {
			return fmt.Errorf("receipt for event %d: the log did not return the attestation sent with it", offset+i)
		}
		if _, err := site.CheckTie(a.Entry, a.Index, rs[i].Index, ids[i], a.Path); err != nil {
			return fmt.Errorf("receipt for event %d: %w", offset+i, err)
		}
	}
	return nil
}

// SignStream reads events as JSON lines from r (blank lines skipped, each
// checked with record.Decode) and writes to w the signed submission of all
// of them (Sign: canonical lines, each group followed by its attestation
// line). name names r in errors, which give the line. Nothing is written
// unless every line is an event.
func SignStream(r io.Reader, w io.Writer, name string, s site.Signer, pub ed25519.PublicKey, origin string, now time.Time) error {
	var evs []record.Event
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, record.MaxEventSize+1)
	for n := 1; sc.Scan(); n++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ev, err := record.Decode(b)
		if err != nil {
			return &InputError{Line: n, Err: fmt.Errorf("%s line %d: %w", name, n, err)}
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		return &InputError{Err: fmt.Errorf("reading %s: %w", name, err)}
	}
	lines, err := Sign(s, pub, origin, now, evs)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for _, l := range lines {
		bw.Write(l)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
