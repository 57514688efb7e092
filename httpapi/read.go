package httpapi

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
)

func (a *api) checkpoint(w http.ResponseWriter, r *http.Request) {
	cp := a.l.Checkpoint()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp.Note)
}

func (a *api) tile(w http.ResponseWriter, r *http.Request) {
	addr, err := verify.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	data, err := a.l.ReadTile(r.Context(), addr)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	if addr.Width == 0 {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=3600")
	}
	if addr.Entries {
		h.Add("Vary", "Accept-Encoding")
	}
	if addr.Entries && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(w)
		zw.Write(data)
		zw.Close()
		zw.Reset(nil)
		gzipWriters.Put(zw)
		return
	}
	// With the length announced the client reads the body into one
	// buffer of the right size, and no chunked encoding is needed.
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

// gzipWriters holds gzip writers (gzip.BestSpeed) for entry bundles: a new
// one allocates and clears about 600 KB, more than compressing a bundle
// costs.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(coding) != "gzip" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// parseUint parses a canonical decimal (no sign, no leading zeros).
func parseUint(name, s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(v, 10) != s {
		return 0, fmt.Errorf("parameter %s=%q is not a decimal number", name, s)
	}
	return v, nil
}

// sizeParam reads an optional size parameter, defaulting to the published size.
func (a *api) sizeParam(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return a.l.Checkpoint().Size, nil
	}
	return parseUint(name, s)
}

type inclusionJSON struct {
	Index    uint64   `json:"index"`
	Size     uint64   `json:"size"`
	LeafHash []byte   `json:"leaf_hash,omitempty"`
	Proof    [][]byte `json:"proof"`
}

func (a *api) inclusion(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, err := a.sizeParam(r, "size")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	var index uint64
	var leaf []byte
	switch {
	case q.Has("index") && q.Has("hash"):
		writeError(w, http.StatusBadRequest, "give index or hash, not both")
		return
	case q.Has("index"):
		if index, err = parseUint("index", q.Get("index")); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	case q.Has("hash"):
		h, err := base64.StdEncoding.Strict().DecodeString(q.Get("hash"))
		if err != nil || len(h) != len(store.Hash{}) {
			writeError(w, http.StatusBadRequest, "parameter hash must be the standard base64 of a 32-byte leaf hash")
			return
		}
		if index, err = a.l.LeafIndex(r.Context(), store.Hash(h)); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				writeError(w, http.StatusNotFound, "no entry with leaf hash %s in the published tree of size %d", base64.StdEncoding.EncodeToString(h), a.l.Checkpoint().Size)
				return
			}
			a.fail(w, r, err)
			return
		}
		leaf = h
	default:
		writeError(w, http.StatusBadRequest, "missing parameter index or hash")
		return
	}
	if size > a.l.Checkpoint().Size {
		writeError(w, http.StatusBadRequest, "size %d is beyond the published tree of size %d", size, a.l.Checkpoint().Size)
		return
	}
	if index >= size {
		if leaf != nil {
			writeError(w, http.StatusBadRequest, "the entry with that hash has index %d, not in a tree of size %d", index, size)
			return
		}
		// An index the published tree does not have yet.
		writeError(w, http.StatusNotFound, "no entry %d in a tree of size %d", index, size)
		return
	}
	p, err := a.l.InclusionProof(r.Context(), index, size)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if leaf == nil {
		es, err := a.l.Entries(r.Context(), index, index+1)
		if err != nil || len(es) != 1 {
			a.fail(w, r, storeError(fmt.Sprintf("reading entry %d", index), 1, len(es), err))
			return
		}
		leaf = es[0].LeafHash[:]
	}
	writeJSON(w, inclusionJSON{Index: index, Size: size, LeafHash: leaf, Proof: nonNil(p)})
}

func nonNil(p [][]byte) [][]byte {
	if p == nil {
		return [][]byte{}
	}
	return p
}

func (a *api) consistency(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("from") {
		writeError(w, http.StatusBadRequest, "missing parameter from")
		return
	}
	from, err := parseUint("from", q.Get("from"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	to, err := a.sizeParam(r, "to")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if to > a.l.Checkpoint().Size || from > to {
		writeError(w, http.StatusBadRequest, "need from <= to <= %d (the published size), got from=%d to=%d", a.l.Checkpoint().Size, from, to)
		return
	}
	p, err := a.l.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, struct {
		From  uint64   `json:"from"`
		To    uint64   `json:"to"`
		Proof [][]byte `json:"proof"`
	}{from, to, nonNil(p)})
}

// EntryJSON is an entry as the JSON endpoints show it.
type EntryJSON struct {
	Index    uint64          `json:"index"`
	LeafHash []byte          `json:"leaf_hash"`
	Entry    []byte          `json:"entry"`
	Event    json.RawMessage `json:"event"`
	// Attestation is set, and Event null, for a site attestation entry.
	Attestation *AttestationJSON `json:"attestation,omitempty"`
}

func entryJSON(e store.Entry) EntryJSON {
	return EntryJSON{Index: e.Index, LeafHash: e.LeafHash[:], Entry: e.Data, Event: eventView(e.Data), Attestation: attestationView(e.Data)}
}

func (a *api) entry(w http.ResponseWriter, r *http.Request) {
	i, err := parseUint("index", r.PathValue("index"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	es, err := a.l.Entries(r.Context(), i, i+1)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(es) == 0 {
		writeError(w, http.StatusNotFound, "no entry %d: the published tree has size %d", i, a.l.Checkpoint().Size)
		return
	}
	writeJSON(w, entryJSON(es[0]))
}

// MaxSamplePage is the most events one GET /v1/samples/{sample} answer
// holds; the rest are on the pages its "next" field links to.
const MaxSamplePage = 1000

// SamplePage is one page of GET /v1/samples/{sample}: the sample's
// published events with index > After (if given) and < Size, in log order,
// at most MaxSamplePage of them. Next, if set, is the path and query of the
// following page (the same Size, so that the pages together are the
// sample's events in one tree); it is absent on the last page.
type SamplePage struct {
	Sample string      `json:"sample"`
	Size   uint64      `json:"size"`
	Events []EntryJSON `json:"events"`
	Next   string      `json:"next,omitempty"`
}

// SamplePath is the path of a sample's events in the API, with the ID
// escaped as one path segment ("." and ".." included, which URL
// resolution would otherwise remove).
func SamplePath(sample string) string {
	return "/v1/samples/" + PathSegment(sample)
}

// PathSegment escapes s as one URL path segment: url.PathEscape, and the
// dot segments "." and ".." written as %2E so that neither clients nor
// servers resolve them away.
func PathSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return url.PathEscape(s)
}

func (a *api) sample(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("sample")
	if err := record.CheckSample(id); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	q := r.URL.Query()
	published := a.l.Checkpoint().Size
	size, err := a.sizeParam(r, "size")
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if size > published {
		writeError(w, http.StatusBadRequest, "size %d is beyond the published tree of size %d", size, published)
		return
	}
	var after uint64
	hasAfter := q.Has("after")
	if hasAfter {
		if after, err = parseUint("after", q.Get("after")); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	idx, err := a.l.SampleIndexes(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.fail(w, r, err)
		return
	}
	// The sample's events in [0, size), then those after the cursor.
	idx = idx[:sort.Search(len(idx), func(i int) bool { return idx[i] >= size })]
	if len(idx) == 0 {
		writeError(w, http.StatusNotFound, "no events of sample %q in the tree of size %d", id, size)
		return
	}
	if hasAfter {
		idx = idx[sort.Search(len(idx), func(i int) bool { return idx[i] > after }):]
	}
	out := SamplePage{Sample: id, Size: size, Events: make([]EntryJSON, 0, min(len(idx), MaxSamplePage))}
	if len(idx) > MaxSamplePage {
		idx = idx[:MaxSamplePage]
		out.Next = fmt.Sprintf("%s?after=%d&size=%d", SamplePath(id), idx[len(idx)-1], size)
	}
	// Read runs of consecutive indexes with one query each.
	for len(idx) > 0 {
		n := 1
		for n < len(idx) && idx[n] == idx[n-1]+1 {
			n++
		}
		es, err := a.l.Entries(r.Context(), idx[0], idx[0]+uint64(n))
		if err != nil || len(es) != n {
			a.fail(w, r, storeError(fmt.Sprintf("reading entries %d to %d of sample %q", idx[0], idx[0]+uint64(n), id), n, len(es), err))
			return
		}
		for _, e := range es {
			out.Events = append(out.Events, entryJSON(e))
		}
		idx = idx[n:]
	}
	writeJSON(w, out)
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	// Counted trails size: the counts are kept in the background.
	size := a.l.Checkpoint().Size
	var counted uint64
	counts := map[string]map[string]uint64{}
	if a.counts != nil {
		counted, counts = a.counts.Counted(), a.counts.Counts()
	}
	writeJSON(w, struct {
		Size    uint64                       `json:"size"`
		Counted uint64                       `json:"counted"`
		Counts  map[string]map[string]uint64 `json:"counts"`
		Sites   string                       `json:"site_signatures"`
	}{size, counted, counts, string(a.l.SiteMode())})
}

func (a *api) healthz(w http.ResponseWriter, r *http.Request) {
	if a.l.Closed() {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	writeJSON(w, map[string]any{"status": "ok", "size": a.l.Checkpoint().Size})
}

// storeError is the error of a read of want published entries that gave
// got, or failed with err: a storage failure (log.ErrUnavailable, answered
// 503 whatever err wraps), keeping err in the chain.
func storeError(what string, want, got int, err error) error {
	if err != nil {
		return fmt.Errorf("%w: %s: %w", log.ErrUnavailable, what, err)
	}
	return fmt.Errorf("%w: %s: the store returned %d entries, want %d", log.ErrUnavailable, what, got, want)
}
