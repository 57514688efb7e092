package dashboard

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/verify"
)

// indexView is the sample page's completeness claim: the sample's proof
// from the log's sample index, verified by the server (sampleindex.Verify)
// against the checkpoint it was made for, whose log signature was
// verified. The page hands the proof and the checkpoint to the browser
// (static/sampleproof.js), which verifies them again.
type indexView struct {
	Size      uint64 // the checkpoint the proof is for
	Complete  bool   // verified: the chain has exactly Events events
	Absent    bool   // verified: the sample was never logged
	Events    uint64
	Problem   string // why the server could not verify the claim
	ProofB64  string // the proof bytes (sampleindex.Proof.Marshal)
	NoteB64   string // the checkpoint's signed note
	Truncated bool   // the page shows only the first events of the chain
	Bytes     int    // the proof's length
	TooLarge  bool   // the proof is not handed to the browser (maxBrowserProof)
}

// maxBrowserProof is the largest sample proof a page hands to the browser
// to check again (a variable for tests): a sample with thousands of
// events has a proof of megabytes, which the server still verifies but
// does not put in the page (custody verify sample checks it).
var maxBrowserProof = 1 << 20

// sampleIndexView proves the sample's chain complete (or the sample
// absent) with the log's sample index; nil when the log keeps none.
// indexes are all the sample's entries the log lists (SampleIndexes):
// those below the proof's size must be exactly the proven ones.
func (d *Dashboard) sampleIndexView(ctx context.Context, id string, indexes []uint64) *indexView {
	proof, cp, err := d.cfg.Log.SampleProof(ctx, id, 0)
	if errors.Is(err, log.ErrNoSampleIndex) {
		return nil
	}
	v := &indexView{}
	if err != nil {
		v.Problem = fmt.Sprintf("the log could not prove the chain complete: %v", err)
		return v
	}
	v.Size = cp.Size
	data := proof.Marshal()
	v.Bytes = len(data)
	if v.TooLarge = len(data) > maxBrowserProof; !v.TooLarge {
		v.ProofB64 = base64.StdEncoding.EncodeToString(data)
		v.NoteB64 = base64.StdEncoding.EncodeToString(cp.Note)
	}
	c, _, err := verify.OpenCheckpoint(cp.Note, d.cfg.Log.Origin(), d.verifiers)
	if err != nil {
		v.Problem = fmt.Sprintf("the checkpoint of the sample proof does not verify: %v", err)
		return v
	}
	mapRoot, err := sampleindex.FindExtension(c.Extensions)
	if err != nil {
		v.Problem = fmt.Sprintf("the checkpoint of size %d commits no sample index: %v", c.Size, err)
		return v
	}
	chain, err := sampleindex.Verify(data, sampleindex.Request{Sample: id, EntrySample: entrySample},
		sampleindex.Trusted{Size: c.Size, LogRoot: c.Root, MapRoot: mapRoot})
	if err != nil {
		v.Problem = fmt.Sprintf("the sample proof does not verify against the checkpoint of size %d: %v", c.Size, err)
		return v
	}
	var proven []uint64
	for _, e := range chain.Entries {
		proven = append(proven, e.Index)
	}
	listed := below(indexes, c.Size)
	if !slices.Equal(proven, listed) && uint64(len(listed)) < chain.List.Size {
		// The proof may be for a checkpoint newer than the list read
		// before it: read the list again.
		if again, err := d.cfg.Log.SampleIndexes(ctx, id); err == nil {
			listed = below(again, c.Size)
		}
	}
	if !slices.Equal(proven, listed) {
		v.Problem = fmt.Sprintf("the log lists entries %v of the sample below size %d, but its index proves %v", listed, c.Size, proven)
		return v
	}
	v.Events = chain.List.Size
	v.Absent = chain.Absent()
	v.Complete = !v.Absent
	v.Truncated = len(listed) > MaxChain
	return v
}

// below returns the indexes less than size.
func below(indexes []uint64, size uint64) []uint64 {
	var out []uint64
	for _, i := range indexes {
		if i < size {
			out = append(out, i)
		}
	}
	return out
}

// entrySample is sampleindex.Request.EntrySample: the sample of a valid
// event entry.
func entrySample(entry []byte) (string, error) {
	ev, err := record.DecodeEntry(entry)
	if err != nil {
		return "", err
	}
	return ev.Sample, nil
}
