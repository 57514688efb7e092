package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/verify"
)

// SampleProofSource returns the encoded proof ([sampleindex.Proof]) of the
// chain of sample at checkpoint size size, of the entries at index since
// and after (0: all): what `GET /v1/samples/<sample>/proof?size=N&since=M`
// serves; and, if the log sent it, the signed checkpoint the proof is for
// (the Custody-Checkpoint header), or nil. Nothing it returns is trusted;
// a failure to fetch is a plain error.
type SampleProofSource func(ctx context.Context, sample string, size, since uint64) (proof, checkpoint []byte, err error)

// MaxSampleProofSize bounds a sample proof read over HTTP (about 200,000
// events of one sample).
const MaxSampleProofSize = 64 << 20

// SampleCheckpointHeader is the response header of the sample proof
// endpoint carrying the signed checkpoint the proof is for, in standard
// base64 (docs/api.md).
const SampleCheckpointHeader = "Custody-Checkpoint"

// HTTPSampleProofs returns the SampleProofSource of the log at baseURL,
// the log's URL prefix (as for verify.NewHTTPSource). A log proves only
// its newest checkpoint: when it answers 409 Conflict (it has grown since
// the checkpoint of size N was read), the proof is asked again without
// size, and comes with the newer checkpoint. Any other status but 200 is
// an error naming the URL, the status and the start of the body; bodies
// over MaxSampleProofSize are errors. hc nil means a client with a
// two-minute timeout.
func HTTPSampleProofs(baseURL string, hc *http.Client) SampleProofSource {
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	base := strings.TrimRight(baseURL, "/")
	get := func(ctx context.Context, u string) (int, []byte, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("GET %s: %v", u, err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("GET %s: %w", u, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return resp.StatusCode, nil, nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, termtext.Clean(strings.TrimSpace(string(b))))
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSampleProofSize+1))
		if err != nil {
			return 0, nil, nil, fmt.Errorf("GET %s: reading body: %w", u, err)
		}
		if len(data) > MaxSampleProofSize {
			return 0, nil, nil, fmt.Errorf("GET %s: response is larger than the %d-byte limit", u, MaxSampleProofSize)
		}
		var cp []byte
		if h := resp.Header.Get(SampleCheckpointHeader); h != "" {
			cp, _ = base64.StdEncoding.DecodeString(h) // checked by the caller, as anything served
		}
		return http.StatusOK, data, cp, nil
	}
	return func(ctx context.Context, sample string, size, since uint64) ([]byte, []byte, error) {
		u := fmt.Sprintf("%s/v1/samples/%s/proof", base, url.PathEscape(sample))
		q := ""
		if since > 0 {
			q = fmt.Sprintf("&since=%d", since)
		}
		status, data, cp, err := get(ctx, fmt.Sprintf("%s?size=%d%s", u, size, q))
		if status == http.StatusConflict {
			_, data, cp, err = get(ctx, u+strings.Replace(q, "&", "?", 1))
		}
		return data, cp, err
	}
}

// SampleOptions configure VerifySample.
type SampleOptions struct {
	// Sample is the sample identifier.
	Sample string
	// SinceNote, if set, is a signed checkpoint of the log kept from an
	// earlier check: only the events at its size and after are reported,
	// and the log's current checkpoint must extend it.
	SinceNote []byte
	// Prev, with SinceNote, is the sample's list state verified at
	// SinceNote's size (SampleReport.List of that check): the proof's old
	// part must be exactly it (sampleindex.Chain.Extends), so that the log
	// cannot have rewritten the sample's earlier events either.
	Prev *sampleindex.ListState
	// Policy, if set, is the routing policy the chain is evaluated
	// against (the whole chain is then fetched, even with SinceNote, since
	// the rules depend on the sample's earlier events).
	Policy *Policy
}

// SampleEvent is one event of a verified sample chain.
type SampleEvent struct {
	// Index is the entry's index in the log.
	Index uint64 `json:"index"`
	// Entry is the entry, a canonical JSON event.
	Entry json.RawMessage `json:"event"`
	// Event is the decoded entry.
	Event record.Event `json:"-"`
}

// SampleReport is the verified, complete chain of one sample: the result
// of VerifySample and the `custody verify sample --json` output.
type SampleReport struct {
	Origin string `json:"origin"`
	Sample string `json:"sample"`
	// Size is the size of the verified checkpoint the chain is complete
	// as of.
	Size uint64 `json:"size"`
	// Since is the log index the events are reported from (0: all).
	Since uint64 `json:"since"`
	// Absent is set when the sample has no event in the log (a verified
	// absence proof).
	Absent bool `json:"absent"`
	// ListSize is the number of the sample's events in the log.
	ListSize uint64 `json:"list_size"`
	// Events are the sample's events at Since and after, in log order:
	// all of them, as the signed checkpoint's index commits.
	Events []SampleEvent `json:"events"`
	// Findings are the policy's findings for the whole chain (Policy
	// set), in index order; nil without a policy.
	Findings []Finding `json:"findings,omitempty"`
	// Checkpoint is the verified signed note.
	Checkpoint string `json:"-"`
	// List is the sample's list state at Size, for a later check's
	// SampleOptions.Prev.
	List sampleindex.ListState `json:"-"`
}

// ErrNoSampleIndex is wrapped by VerifySample's error when the log's
// checkpoint commits no sample index (no custody-sample-index line): the
// log predates the index, and only a full audit can tell a sample's
// chain.
var ErrNoSampleIndex = errors.New("the log's checkpoint commits no sample index (no custody-sample-index line)")

// VerifySample fetches the log's checkpoint through c (verified against
// the log's key and c's trust policy), then the proof of opts.Sample's
// chain at that size from proofs, and verifies it with
// sampleindex.VerifyProof against the checkpoint's log root and committed
// map root: the events returned are all the sample's events in the log as
// of that checkpoint (or none: a verified absence), each proved in the
// log. With opts.SinceNote the current checkpoint must extend that one and
// only the newer events are reported; with opts.Policy the chain is
// evaluated against the routing policy (the findings a full audit reports
// for this sample).
//
// A proof that does not verify is a *verify.VerificationError of kind
// EvidenceBadSampleProof, carrying the signed checkpoint and the served
// proof; checkpoint failures are verify's; a log without an index gives
// an error wrapping ErrNoSampleIndex; any other error is a failure to
// fetch.
func VerifySample(ctx context.Context, c *verify.Client, proofs SampleProofSource, opts SampleOptions) (*SampleReport, error) {
	cp, signed, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	var since uint64
	if opts.SinceNote != nil {
		old, err := c.OpenCheckpoint(opts.SinceNote)
		if err != nil {
			return nil, err
		}
		if _, err := c.CheckExtends(ctx, old, opts.SinceNote, cp); err != nil {
			return nil, err
		}
		since = old.Size
	}
	ask := since
	if opts.Policy != nil {
		ask = 0
	}
	data, served, err := proofs(ctx, opts.Sample, cp.Size, ask)
	if err != nil {
		return nil, err
	}
	// A log that grew between the two requests proves its newer
	// checkpoint, which it serves with the proof: that one must verify
	// (signatures, trust policy) and extend the first.
	if p, err := sampleindex.ParseProof(data); err == nil && p.Size > cp.Size && served != nil {
		cp2, err := c.OpenCheckpoint(served)
		if err != nil {
			return nil, err
		}
		if cp2.Size == p.Size {
			if _, err := c.CheckExtends(ctx, cp, signed, cp2); err != nil {
				return nil, err
			}
			cp, signed = cp2, served
		}
	}
	mapRoot, has, err := committedIndex(cp, signed)
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, fmt.Errorf("log %s, checkpoint of size %d: %w", c.Origin(), cp.Size, ErrNoSampleIndex)
	}
	bad := func(err error) error {
		return &verify.VerificationError{Evidence: verify.Evidence{
			Kind:   EvidenceBadSampleProof,
			What:   fmt.Sprintf("the log's proof of the chain of sample %q at size %d (since %d) does not verify against its signed checkpoint", opts.Sample, cp.Size, ask),
			Origin: cp.Origin, NewCheckpoint: string(signed), NewSize: cp.Size,
			Proof: []string{base64.StdEncoding.EncodeToString(data)}, Expected: b64(mapRoot), Time: time.Now().UTC(),
		}, Err: err}
	}
	req := sampleindex.Request{Sample: opts.Sample, Since: ask, EntrySample: entrySample}
	ch, err := sampleindex.Verify(data, req, sampleindex.Trusted{Size: cp.Size, LogRoot: cp.Root, MapRoot: mapRoot})
	if err != nil {
		return nil, bad(err)
	}
	rep := &SampleReport{Origin: cp.Origin, Sample: opts.Sample, Size: cp.Size, Since: since, Absent: ch.Absent(),
		ListSize: ch.List.Size, Events: []SampleEvent{}, Checkpoint: string(signed), List: ch.List}
	var engine *Engine
	if opts.Policy != nil {
		engine = NewEngine(opts.Policy)
		rep.Findings = []Finding{}
	}
	for _, e := range ch.Entries {
		ev, err := record.DecodeEntry(e.Data)
		if err != nil { // VerifyProof decoded it already
			return nil, bad(err)
		}
		if engine != nil {
			engine.Skip(e.Index)
			rep.Findings = append(rep.Findings, engine.Add(e.Index, ev)...)
		}
		if e.Index >= since {
			rep.Events = append(rep.Events, SampleEvent{Index: e.Index, Entry: json.RawMessage(e.Data), Event: ev})
		}
	}
	if opts.Prev != nil && since > 0 {
		old := ch.Old
		if ask == 0 {
			// The whole chain was fetched: its first elements before
			// since are the list as of since.
			n := uint64(len(ch.Entries) - len(rep.Events))
			elems := make([]sampleindex.ListElement, n)
			for i := range elems {
				elems[i] = sampleindex.ListElement{Index: ch.Entries[i].Index, LeafHash: sampleindex.EntryLeafHash(ch.Entries[i].Data)}
			}
			old = sampleindex.ListState{Size: n}
			if n > 0 {
				old.Root = sampleindex.ListRoot(elems)
			}
		}
		if old != *opts.Prev {
			return nil, bad(fmt.Errorf("%w: the sample's list as of size %d has %d elements and root %x, the list verified then had %d and root %x",
				sampleindex.ErrBadConsistency, since, old.Size, old.Root[:], opts.Prev.Size, opts.Prev.Root[:]))
		}
	}
	return rep, nil
}

// entrySample is sampleindex.Request.EntrySample for custody entries: the
// sample of an event entry (an attestation, or anything else, is an
// error).
func entrySample(entry []byte) (string, error) {
	ev, err := record.DecodeEntry(entry)
	if err != nil {
		return "", err
	}
	return ev.Sample, nil
}
