package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custodylog/custody/store/witnessdb"
	"github.com/custodylog/custody/verify"
	formatsnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "example.com/testlog"

// --- an RFC 6962 reference, independent of verify's proof code ---

func mth(leaves [][]byte) [32]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return verify.LeafHash(leaves[0])
	}
	k := split(len(leaves))
	return verify.NodeHash(mth(leaves[:k]), mth(leaves[k:]))
}

// split is the largest power of two smaller than n (n > 1).
func split(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

func subproof(m int, leaves [][]byte, b bool) [][32]byte {
	n := len(leaves)
	if m == n {
		if b {
			return nil
		}
		return [][32]byte{mth(leaves)}
	}
	k := split(n)
	if m <= k {
		return append(subproof(m, leaves[:k], b), mth(leaves[k:]))
	}
	return append(subproof(m-k, leaves[k:], false), mth(leaves[:k]))
}

func consistency(m int, leaves [][]byte) [][32]byte {
	if m == 0 || m == len(leaves) {
		return nil
	}
	return subproof(m, leaves, true)
}

func makeLeaves(prefix string, n int) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, []byte(fmt.Sprintf("%s-%d", prefix, i)))
	}
	return out
}

// --- fixtures ---

type fixture struct {
	t        *testing.T
	dir      string
	logSK    note.Signer
	logVK    note.Verifier
	witSkey  string
	witVKey  string
	w        *Witness
	h        http.Handler
	otherSK  note.Signer // same origin name, a key the witness does not trust
	clockSec int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: t.TempDir(), clockSec: 1700000000}
	if f.logSK, err = note.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	if f.logVK, err = verify.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	oskey, _, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if f.otherSK, err = note.NewSigner(oskey); err != nil {
		t.Fatal(err)
	}
	if f.witSkey, _, err = note.GenerateKey(rand.Reader, "example.com/testwitness"); err != nil {
		t.Fatal(err)
	}
	f.open()
	return f
}

func (f *fixture) now() time.Time { return time.Unix(f.clockSec, 0) }

func (f *fixture) open() {
	f.t.Helper()
	signer, vkey, err := verify.NewCosignatureSignerFromKey(f.witSkey, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	f.witVKey = vkey
	w, err := Open(Config{State: openState(f.t, f.dir), Signer: signer, Logs: []note.Verifier{f.logVK}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.w, f.h = w, w.Handler()
	f.t.Cleanup(func() { w.Close() })
}

// openState opens the SQLite witness state in dir, as custody witness
// serve does.
func openState(tb testing.TB, dir string) StateStore {
	tb.Helper()
	st, err := witnessdb.Open(filepath.Join(dir, witnessdb.FileName))
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func (f *fixture) restart() {
	f.t.Helper()
	if err := f.w.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

// checkpoint returns the signed checkpoint of the tree of leaves.
func (f *fixture) checkpoint(leaves [][]byte, signers ...note.Signer) []byte {
	f.t.Helper()
	if len(signers) == 0 {
		signers = []note.Signer{f.logSK}
	}
	cp := verify.Checkpoint{Origin: testOrigin, Size: uint64(len(leaves)), Root: mth(leaves)}
	return f.sign(string(cp.Marshal()), signers...)
}

func (f *fixture) sign(text string, signers ...note.Signer) []byte {
	f.t.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		f.t.Fatal(err)
	}
	return msg
}

func body(old int, proof [][32]byte, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

type response struct {
	code int
	ct   string
	body string
}

func (f *fixture) post(b []byte) response {
	req := httptest.NewRequest("POST", "/add-checkpoint", bytes.NewReader(b))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()}
}

// add submits the tree of leaves with a proof from old.
func (f *fixture) add(old int, leaves [][]byte) response {
	return f.post(body(old, consistency(old, leaves), f.checkpoint(leaves)))
}

func (f *fixture) want(r response, code int) {
	f.t.Helper()
	if r.code != code {
		f.t.Fatalf("status %d, want %d; body %q", r.code, code, r.body)
	}
}

// verifyCosig checks a 200 answer for the checkpoint of leaves with our
// verifier and with transparency-dev/formats, and returns the timestamp.
func (f *fixture) verifyCosig(r response, cp []byte) time.Time {
	f.t.Helper()
	f.want(r, http.StatusOK)
	if !strings.HasPrefix(r.body, "— example.com/testwitness ") || !strings.HasSuffix(r.body, "\n") || strings.Count(r.body, "\n") != 1 {
		f.t.Fatalf("cosignature line %q", r.body)
	}
	full := append(bytes.Clone(cp), r.body...)
	ours, err := verify.NewCosignatureVerifier(f.witVKey)
	if err != nil {
		f.t.Fatal(err)
	}
	theirs, err := formatsnote.NewVerifierForCosignatureV1(f.witVKey)
	if err != nil {
		f.t.Fatal(err)
	}
	for name, v := range map[string]note.Verifier{"verify": ours, "formats": theirs} {
		n, err := note.Open(full, note.VerifierList(v))
		if err != nil {
			f.t.Fatalf("%s: cosignature does not verify: %v", name, err)
		}
		if len(n.Sigs) != 1 {
			f.t.Fatalf("%s: %d verified sigs", name, len(n.Sigs))
		}
		if name == "formats" {
			ts, err := formatsnote.CoSigV1Timestamp(n.Sigs[0])
			if err != nil || !ts.Equal(f.now()) {
				f.f("formats timestamp %v, %v; want %v", ts, err, f.now())
			}
		}
	}
	// And by hand, over the exact cosignature/v1 message.
	b64 := strings.TrimSuffix(strings.Fields(r.body)[2], "\n")
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sig) != 76 {
		f.t.Fatalf("cosignature blob: %v, %d bytes", err, len(sig))
	}
	ts := binary.BigEndian.Uint64(sig[4:12])
	text := cp[:bytes.LastIndex(cp, []byte("\n\n"))+1]
	msg := append([]byte("cosignature/v1\ntime "+strconv.FormatUint(ts, 10)+"\n"), text...)
	vk, _ := base64.StdEncoding.DecodeString(strings.SplitN(f.witVKey, "+", 3)[2])
	if vk[0] != 0x04 || !ed25519.Verify(ed25519.PublicKey(vk[1:]), msg, sig[12:]) {
		f.t.Fatal("cosignature does not verify by hand")
	}
	return time.Unix(int64(ts), 0)
}

func (f *fixture) f(format string, args ...any) { f.t.Helper(); f.t.Fatalf(format, args...) }

func (f *fixture) wantConflict(r response, size int) {
	f.t.Helper()
	f.want(r, http.StatusConflict)
	if r.ct != "text/x.tlog.size" {
		f.t.Fatalf("409 Content-Type %q, want text/x.tlog.size", r.ct)
	}
	if r.body != strconv.Itoa(size)+"\n" {
		f.t.Fatalf("409 body %q, want %q", r.body, strconv.Itoa(size)+"\n")
	}
}

// --- tests ---

func TestAddCheckpointFlow(t *testing.T) {
	f := newFixture(t)
	leaves := makeLeaves("a", 20)

	// 200: first sight, old 0.
	cp5 := f.checkpoint(leaves[:5])
	f.verifyCosig(f.post(body(0, nil, cp5)), cp5)
	// 409: old 0 but stored 5.
	f.wantConflict(f.add(0, leaves[:8]), 5)
	// 200: good proof 5 -> 8, with a later clock.
	f.clockSec += 60
	cp8 := f.checkpoint(leaves[:8])
	if ts := f.verifyCosig(f.post(body(5, consistency(5, leaves[:8]), cp8)), cp8); ts.Unix() != f.clockSec {
		t.Errorf("timestamp %v", ts)
	}
	// 200: same size, same root, fresh cosignature.
	f.clockSec += 60
	if ts := f.verifyCosig(f.post(body(8, nil, cp8)), cp8); ts.Unix() != f.clockSec {
		t.Errorf("timestamp %v", ts)
	}
	// 422: tampered proof.
	p := consistency(8, leaves[:13])
	p[0][0] ^= 1
	f.want(f.post(body(8, p, f.checkpoint(leaves[:13]))), http.StatusUnprocessableEntity)
	// 422: a proof of the wrong length.
	f.want(f.post(body(8, consistency(8, leaves[:13])[1:], f.checkpoint(leaves[:13]))), http.StatusUnprocessableEntity)
	// 400: old > size.
	f.want(f.post(body(13, nil, f.checkpoint(leaves[:8]))), http.StatusBadRequest)
	// 409 for an old that is not the stored size, and 422 for the same size
	// with another root.
	f.wantConflict(f.add(7, leaves[:13]), 8)
	other := append(append([][]byte{}, leaves[:7]...), []byte("forged"))
	f.want(f.post(body(8, nil, f.checkpoint(other))), http.StatusUnprocessableEntity)
	// 200: an extension line is signed, and the proof 8 -> 13 is good.
	text := string((verify.Checkpoint{Origin: testOrigin, Size: 13, Root: mth(leaves[:13]), Extensions: []string{"ext line"}}).Marshal())
	cp13 := f.sign(text, f.logSK)
	f.verifyCosig(f.post(body(8, consistency(8, leaves[:13]), cp13)), cp13)

	// GET the latest cosigned checkpoint.
	sum := sha256.Sum256([]byte(testOrigin))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+hex.EncodeToString(sum[:])+"/checkpoint", nil))
	if rec.Code != 200 {
		t.Fatalf("GET checkpoint: %d", rec.Code)
	}
	got := rec.Body.Bytes()
	if !bytes.HasPrefix(got, cp13) {
		t.Fatalf("GET checkpoint %q does not start with the submitted one", got)
	}
	v, _ := verify.NewCosignatureVerifier(f.witVKey)
	if _, err := note.Open(got, note.VerifierList(v)); err != nil {
		t.Fatalf("GET checkpoint cosignature: %v", err)
	}
	if _, _, err := verify.OpenCheckpoint(got, testOrigin, note.VerifierList(f.logVK)); err != nil {
		t.Fatalf("GET checkpoint log signature: %v", err)
	}
	rec = httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+strings.Repeat("00", 32)+"/checkpoint", nil))
	if rec.Code != 404 {
		t.Fatalf("GET unknown checkpoint: %d", rec.Code)
	}
}

func TestGetCheckpointNone(t *testing.T) {
	f := newFixture(t)
	sum := sha256.Sum256([]byte(testOrigin))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest("GET", "/"+hex.EncodeToString(sum[:])+"/checkpoint", nil))
	if rec.Code != 404 {
		t.Fatalf("GET before any cosignature: %d", rec.Code)
	}
}

func TestMalformed(t *testing.T) {
	f := newFixture(t)
	cp := f.checkpoint(makeLeaves("a", 3))
	good := string(body(0, nil, cp))
	for name, b := range map[string]string{
		"empty":            "",
		"no old line":      "\n" + string(cp),
		"no blank line":    "old 0\n" + string(cp[:bytes.Index(cp, []byte("\n\n"))]),
		"old leading zero": "old 00\n\n" + string(cp),
		"old negative":     "old -1\n\n" + string(cp),
		"old spaces":       "old  0\n\n" + string(cp),
		"old CRLF":         "old 0\r\n\r\n" + string(cp),
		"bad base64":       "old 1\nnot-base64!\n\n" + string(cp),
		"short hash":       "old 1\n" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n\n" + string(cp),
		"64 proof lines":   "old 1\n" + strings.Repeat(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n", 64) + "\n" + string(cp),
		"no signatures":    strings.TrimSuffix(good, good[strings.LastIndex(good, "\n\n")+2:]),
		"bad checkpoint":   "old 0\n\n" + string(f.sign(testOrigin+"\nx\n"+base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n", f.logSK)),
		"no origin line":   "old 0\n\n" + testOrigin,
	} {
		t.Run(name, func(t *testing.T) {
			r := f.post([]byte(b))
			if r.code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %q", r.code, r.body)
			}
		})
	}
	// The witness did not store anything.
	f.verifyCosig(f.post([]byte(good)), cp)
}

func TestOversize(t *testing.T) {
	f := newFixture(t)
	cp := f.checkpoint(makeLeaves("a", 3))
	b := append(body(0, nil, cp), bytes.Repeat([]byte("— x "+strings.Repeat("A", 90)+"\n"), 200)...)
	r := f.post(b)
	if r.code != http.StatusRequestEntityTooLarge && r.code != http.StatusBadRequest {
		t.Fatalf("status %d, want 413 or 400", r.code)
	}
	if r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", r.code)
	}
}

func TestSignatures(t *testing.T) {
	f := newFixture(t)
	leaves := makeLeaves("a", 4)
	// 404: unknown origin.
	skey, _, _ := note.GenerateKey(rand.Reader, "example.com/unknown")
	unk, _ := note.NewSigner(skey)
	cp := verify.Checkpoint{Origin: "example.com/unknown", Size: 4, Root: mth(leaves)}
	f.want(f.post(body(0, nil, f.sign(string(cp.Marshal()), unk))), http.StatusNotFound)
	// 403: only an untrusted key (with the trusted name) signed.
	f.want(f.post(body(0, nil, f.checkpoint(leaves, f.otherSK))), http.StatusForbidden)
	// 403: the trusted key's signature is corrupted, even next to a good one
	// from another key.
	good := f.checkpoint(leaves)
	i := bytes.LastIndex(good, []byte("\n\n")) + 2
	line := []byte(string(good[i:]))
	sigStart := bytes.LastIndexByte(line, ' ') + 1
	// Flip a character of the signature (after the 4-byte key ID: base64
	// characters 8 onwards).
	if line[sigStart+10] == 'A' {
		line[sigStart+10] = 'B'
	} else {
		line[sigStart+10] = 'A'
	}
	bad := append(bytes.Clone(good[:i]), line...)
	f.want(f.post(body(0, nil, bad)), http.StatusForbidden)
	// 403 for a note with a bad trusted signature also signed by another key.
	other := f.sign(string(good[:i-1]), f.otherSK)
	badPlus := append(bad, other[bytes.LastIndex(other, []byte("\n\n"))+2:]...)
	f.want(f.post(body(0, nil, badPlus)), http.StatusForbidden)
	// 200: signed by the trusted key and an unknown one.
	both := f.checkpoint(leaves, f.logSK, f.otherSK)
	f.verifyCosig(f.post(body(0, nil, both)), both)
}

func TestZeroSize(t *testing.T) {
	f := newFixture(t)
	// 422: size 0 with another root.
	bad := f.sign(testOrigin+"\n0\n"+base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n", f.logSK)
	f.want(f.post(body(0, nil, bad)), http.StatusUnprocessableEntity)
	// 422: old 0 with a proof line on a fresh log.
	leaves := makeLeaves("a", 4)
	f.want(f.post(body(0, [][32]byte{mth(leaves[:1])}, f.checkpoint(leaves))), http.StatusUnprocessableEntity)
	// 200: the empty tree.
	empty := f.checkpoint(nil)
	f.verifyCosig(f.post(body(0, nil, empty)), empty)
	f.verifyCosig(f.post(body(0, nil, empty)), empty)
	// 422: old 0 with a proof line, stored size 0.
	f.want(f.post(body(0, [][32]byte{mth(leaves[:1])}, f.checkpoint(leaves))), http.StatusUnprocessableEntity)
	f.verifyCosig(f.add(0, leaves), f.checkpoint(leaves))
}

// TestSplitView: two trees of the same size; only the first is cosigned.
func TestSplitView(t *testing.T) {
	f := newFixture(t)
	a, b := makeLeaves("a", 10), makeLeaves("b", 10)
	cpA, cpB := f.checkpoint(a), f.checkpoint(b)
	f.verifyCosig(f.post(body(0, nil, cpA)), cpA)
	f.want(f.post(body(10, nil, cpB)), http.StatusUnprocessableEntity)
	f.wantConflict(f.post(body(0, nil, cpB)), 10)
	// A fork that grows from B is refused too, even with a valid proof
	// within B's tree.
	b15 := append(b, makeLeaves("c", 5)...)
	f.want(f.post(body(10, consistency(10, b15), f.checkpoint(b15))), http.StatusUnprocessableEntity)
	f.verifyCosig(f.post(body(10, nil, cpA)), cpA)
}

// TestRestart: the state survives Close and Open.
func TestRestart(t *testing.T) {
	f := newFixture(t)
	a, b := makeLeaves("a", 16), makeLeaves("b", 16)
	f.verifyCosig(f.add(0, a[:6]), f.checkpoint(a[:6]))
	f.restart()
	f.wantConflict(f.add(0, b[:6]), 6)
	f.want(f.post(body(6, nil, f.checkpoint(b[:6]))), http.StatusUnprocessableEntity)
	f.want(f.post(body(6, consistency(6, b[:9]), f.checkpoint(b[:9]))), http.StatusUnprocessableEntity)
	f.verifyCosig(f.add(6, a[:9]), f.checkpoint(a[:9]))
	f.restart()
	f.wantConflict(f.add(6, a[:12]), 9)
	f.want(f.post(body(9, nil, f.checkpoint(b[:9]))), http.StatusUnprocessableEntity)
	f.verifyCosig(f.add(9, a[:12]), f.checkpoint(a[:12]))
}

// TestConcurrent: 20 conflicting checkpoints of one size at once; exactly
// one root is cosigned, and only consistent extensions of it afterwards.
func TestConcurrent(t *testing.T) {
	f := newFixture(t)
	const n = 20
	var trees [n][][]byte
	var cps [n][]byte
	for i := range n {
		trees[i] = makeLeaves(fmt.Sprintf("t%d", i), 7)
		cps[i] = f.checkpoint(trees[i])
	}
	var wg sync.WaitGroup
	var results [n]response
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = f.post(body(0, nil, cps[i]))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, r := range results {
		switch r.code {
		case http.StatusOK:
			if winner >= 0 {
				t.Fatalf("two roots of size 7 cosigned: trees %d and %d", winner, i)
			}
			winner = i
			f.verifyCosig(r, cps[i])
		case http.StatusConflict:
			f.wantConflict(r, 7)
		default:
			t.Fatalf("tree %d: status %d %q", i, r.code, r.body)
		}
	}
	if winner < 0 {
		t.Fatal("no tree cosigned")
	}
	// Now everyone retries with old 7 and extensions, concurrently.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := f.post(body(7, nil, cps[i]))
			if (i == winner) != (r.code == http.StatusOK) {
				t.Errorf("tree %d (winner %d) resubmitted: status %d", i, winner, r.code)
			}
		}()
	}
	wg.Wait()
}

// TestConcurrentGrowth: concurrent consistent and inconsistent growth
// from one state; the stored state never forks.
func TestConcurrentGrowth(t *testing.T) {
	f := newFixture(t)
	base := makeLeaves("base", 4)
	f.verifyCosig(f.add(0, base), f.checkpoint(base))
	var wg sync.WaitGroup
	var mu sync.Mutex
	cosigned := map[int][][32]byte{}
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leaves := append(append([][]byte{}, base...), makeLeaves(fmt.Sprintf("g%d", i), 4)...)
			r := f.add(4, leaves)
			if r.code == http.StatusOK {
				mu.Lock()
				cosigned[len(leaves)] = append(cosigned[len(leaves)], mth(leaves))
				mu.Unlock()
			} else if r.code != http.StatusConflict {
				t.Errorf("status %d %q", r.code, r.body)
			}
		}()
	}
	wg.Wait()
	if len(cosigned[8]) != 1 {
		t.Fatalf("cosigned %d roots of size 8", len(cosigned[8]))
	}
}

func TestOpenErrors(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, testOrigin)
	_ = skey
	v, _ := note.NewVerifier(vkey)
	ws, _, _ := note.GenerateKey(rand.Reader, "w")
	signer, _, _ := verify.NewCosignatureSignerFromKey(ws, nil)
	st := newMemState()
	for name, cfg := range map[string]Config{
		"no state":  {Signer: signer, Logs: []note.Verifier{v}},
		"no signer": {State: st, Logs: []note.Verifier{v}},
		"no logs":   {State: st, Signer: signer},
		"duplicate": {State: st, Signer: signer, Logs: []note.Verifier{v, v}},
		"nil log":   {State: st, Signer: signer, Logs: []note.Verifier{v, nil}},
	} {
		if w, err := Open(cfg); err == nil {
			w.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
	if st.closed {
		t.Error("a failed Open closed the state store it was given")
	}
}

func TestMethod(t *testing.T) {
	f := newFixture(t)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest("GET", "/add-checkpoint", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /add-checkpoint: %d", rec.Code)
	}
}
