package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/store"
)

// SampleProver is what GET /v1/samples/{sample}/proof needs of the log
// (*log.Log implements it): a Log that does not serves 404 there.
type SampleProver interface {
	// SampleProof returns the proof of the sample's chain of entries at
	// indexes since and above against the newest checkpoint the sample
	// index covers, and that checkpoint as stored (log.Log.SampleProof).
	SampleProof(ctx context.Context, sample string, since uint64) (*sampleindex.Proof, store.Checkpoint, error)
}

// Response headers of GET /v1/samples/{sample}/proof (docs/api.md).
const (
	// CheckpointSizeHeader is the size of the checkpoint the proof is
	// for, in decimal.
	CheckpointSizeHeader = "Custody-Checkpoint-Size"
	// CheckpointHeader is that checkpoint's signed note (with the
	// cosignatures stored with it), in standard base64: the proof
	// verifies against it once its signatures are checked.
	CheckpointHeader = "Custody-Checkpoint"
	// SampleProofType is the content type of a sample proof.
	SampleProofType = "application/octet-stream"
)

// SampleProofPath returns the path of a sample's proof (without query).
func SampleProofPath(sample string) string {
	return SamplePath(sample) + "/proof"
}

// sampleProof serves GET /v1/samples/{sample}/proof?size=N&since=M: the
// sample's proof (sampleindex.Proof.Marshal) against the newest
// checkpoint, whose size and signed note are in the response headers.
// Historical map versions are not kept: a size other than the newest one
// is answered 409 naming it.
func (a *api) sampleProof(w http.ResponseWriter, r *http.Request) {
	sp, ok := a.l.(SampleProver)
	if !ok {
		writeError(w, http.StatusNotFound, "this log keeps no sample index, so it serves no sample proofs")
		return
	}
	id := r.PathValue("sample")
	if err := record.CheckSample(id); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	q := r.URL.Query()
	var size, since uint64
	hasSize := q.Has("size")
	var err error
	if hasSize {
		if size, err = parseUint("size", q.Get("size")); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	if q.Has("since") {
		if since, err = parseUint("since", q.Get("since")); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	if hasSize && since > size {
		writeError(w, http.StatusBadRequest, "since %d is beyond size %d", since, size)
		return
	}
	if published := a.l.Checkpoint().Size; hasSize && size > published {
		writeError(w, http.StatusBadRequest, "size %d is beyond the published tree of size %d", size, published)
		return
	}
	p, cp, err := sp.SampleProof(r.Context(), id, since)
	switch {
	case errors.Is(err, log.ErrNoSampleIndex):
		writeError(w, http.StatusNotFound, "this log keeps no sample index, so it serves no sample proofs")
		return
	case err != nil:
		a.fail(w, r, err)
		return
	}
	if hasSize && size != cp.Size {
		writeError(w, http.StatusConflict, "the sample index proves the newest checkpoint only, of size %d, not %d (older versions of the map are not kept): ask again without size, or with size=%d", cp.Size, size, cp.Size)
		return
	}
	body := p.Marshal()
	h := w.Header()
	h.Set("Content-Type", SampleProofType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(CheckpointSizeHeader, strconv.FormatUint(cp.Size, 10))
	h.Set(CheckpointHeader, base64.StdEncoding.EncodeToString(cp.Note))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
