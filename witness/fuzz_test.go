package witness

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// Fixed keys for the fuzz target, so that the seed corpus in
// testdata/fuzz/FuzzAddCheckpointBody can carry checkpoints that the
// witness accepts. Test keys only; they protect nothing.
const (
	fuzzLogOrigin = "example.com/fuzzlog"
	fuzzLogSKey   = "PRIVATE+KEY+example.com/fuzzlog+b30f19ea+AU1l+nzmEIXyH08qqBsc8bUCHVzX0DLRBU/Y4j6s5vc6"
	fuzzLogVKey   = "example.com/fuzzlog+b30f19ea+AbpqTWtyc47aKwuFSFbmWupi+cJNdCUsdGVsnOw2Kgk8"
	fuzzWitSKey   = "PRIVATE+KEY+example.com/fuzzwitness+2a59ac26+AeH/8GAJeOgYGu4dB079HajztNTTgYRunZnc0+qnjoFw"
)

// formatRequest is the inverse of parseRequest: the one body that parses
// to r.
func formatRequest(r request) []byte {
	var b bytes.Buffer
	b.WriteString("old " + strconv.FormatUint(r.old, 10) + "\n")
	for _, h := range r.proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(r.note)
	return b.Bytes()
}

// fuzzBody builds an add-checkpoint body for the fuzz log's tree of leaves.
func fuzzBody(tb testing.TB, old int, leaves [][]byte) []byte {
	tb.Helper()
	signer, err := note.NewSigner(fuzzLogSKey)
	if err != nil {
		tb.Fatal(err)
	}
	cp := verify.Checkpoint{Origin: fuzzLogOrigin, Size: uint64(len(leaves)), Root: mth(leaves)}
	msg, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signer)
	if err != nil {
		tb.Fatal(err)
	}
	return body(old, consistency(old, leaves), msg)
}

// FuzzAddCheckpointBody feeds arbitrary add-checkpoint bodies to the parser
// and to the real handler (a witness with SQLite state trusting one log key).
// It checks that nothing panics, that whatever parseRequest accepts formats
// back to exactly the bytes it was given (so the grammar has one spelling
// per request), that the handler answers only with the documented codes and
// never 500, that a body the parser rejects gets 400 (413 if oversize), and
// that a 200 carries a cosignature that verifies on the submitted checkpoint.
func FuzzAddCheckpointBody(f *testing.F) {
	f.Add(fuzzBody(f, 0, makeLeaves("fuzz", 3)))
	f.Add(fuzzBody(f, 3, makeLeaves("fuzz", 7)))

	logVK, err := verify.NewVerifier(fuzzLogVKey)
	if err != nil {
		f.Fatal(err)
	}
	now := func() time.Time { return time.Unix(1700000000, 0) }
	witSigner, witVKey, err := verify.NewCosignatureSignerFromKey(fuzzWitSKey, now)
	if err != nil {
		f.Fatal(err)
	}
	witVerifier, err := verify.NewCosignatureVerifier(witVKey)
	if err != nil {
		f.Fatal(err)
	}
	w, err := Open(Config{State: openState(f, f.TempDir()), Signer: witSigner, Logs: []note.Verifier{logVK}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { w.Close() })
	h := w.Handler()

	allowed := map[int]bool{200: true, 400: true, 403: true, 404: true, 409: true, 413: true, 422: true}

	f.Fuzz(func(t *testing.T, b []byte) {
		req, perr := parseRequest(b)
		if perr == nil {
			if got := formatRequest(req); !bytes.Equal(got, b) {
				t.Fatalf("parseRequest accepted %q but it formats back as %q", b, got)
			}
			if len(req.proof) > MaxProofLines {
				t.Fatalf("parseRequest accepted %d proof lines", len(req.proof))
			}
		}

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/add-checkpoint", bytes.NewReader(b)))
		code, resp := rec.Code, rec.Body.String()
		if !allowed[code] {
			t.Fatalf("status %d for body %q; answer %q", code, b, resp)
		}
		switch {
		case len(b) > MaxRequestBodyBytes:
			if code != http.StatusRequestEntityTooLarge {
				t.Fatalf("oversize body (%d bytes): status %d, want 413", len(b), code)
			}
			return
		case perr != nil:
			if code != http.StatusBadRequest {
				t.Fatalf("parseRequest rejected %q (%v) but the handler answered %d %q", b, perr, code, resp)
			}
			return
		}
		if code == http.StatusConflict {
			if ct := rec.Header().Get("Content-Type"); ct != SizeContentType {
				t.Fatalf("409 with Content-Type %q", ct)
			}
			if _, err := strconv.ParseUint(strings.TrimSuffix(resp, "\n"), 10, 64); err != nil || !strings.HasSuffix(resp, "\n") {
				t.Fatalf("409 body %q is not a size line", resp)
			}
		}
		if code != http.StatusOK {
			return
		}
		// A cosignature was issued: it must be over a checkpoint the trusted
		// key signed, and it must verify with the witness key.
		n, err := note.Open(req.note, note.VerifierList(logVK))
		if err != nil {
			t.Fatalf("cosigned a note the log key does not verify: %v; body %q", err, b)
		}
		cosigned := append([]byte(n.Text+"\n"), []byte(resp)...)
		if _, err := note.Open(cosigned, note.VerifierList(witVerifier)); err != nil {
			t.Fatalf("cosignature %q does not verify: %v", resp, err)
		}
	})
}
