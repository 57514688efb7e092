// Package witness is a C2SP tlog-witness (c2sp.org/tlog-witness): it
// cosigns checkpoints of the logs it is configured to trust, but only after
// checking that each new checkpoint extends the last one it cosigned for
// that log.
//
// # Guarantees
//
// For each configured log (identified by its origin, the name of its key) the
// witness keeps exactly one state, the size and root hash of the latest
// checkpoint it cosigned, in a [StateStore] (custody witness serve uses
// store/witnessdb: a SQLite file in WAL mode, synchronous=FULL). It promises:
//
//   - It cosigns a checkpoint only if it carries a valid signature from a
//     configured key for its origin, and no configured key's signature on it
//     is bad.
//   - It cosigns a checkpoint of size N with root R only if (N, R) equals
//     the stored state or a valid RFC 6962 consistency proof leads from the
//     stored state to (N, R). Hence every root it ever cosigned for a log is
//     a prefix of every later one, and it never cosigns two different roots
//     for the same size of one log.
//   - The new state is written by [StateStore.CompareAndSwap] on the
//     previous size and root and committed durably before the cosignature
//     leaves the process; if the store fails, the witness answers 500 and
//     sends no cosignature. Concurrent requests, in this process or in
//     others sharing the store, and restarts (including crashes) cannot roll
//     the state back or fork it.
//
// A cosignature is a timestamped Ed25519 cosignature/v1 (c2sp.org/
// tlog-cosignature) by the configured signer: "at this time, this was the
// largest consistent tree the witness had seen for this log".
//
// # HTTP
//
// POST /add-checkpoint follows c2sp.org/tlog-witness: the body is
// "old <size>\n", up to 63 base64 consistency-proof lines, a blank line and
// the signed checkpoint. Answers: 200 with the cosignature line(s); 400 for a
// malformed body or an old size above the checkpoint's; 403 without a valid
// signature from a trusted key (or with a bad one from a trusted key); 404
// for an unknown origin; 409 (Content-Type text/x.tlog.size, body
// "<stored size>\n") when old is not the stored size; 413 for a body over
// 16 KiB; 422 when the proof fails, for a different root at the stored
// size, a size-0 checkpoint whose root is not SHA-256(""), or an old size
// of 0 with proof lines.
//
// GET /<lowercase hex SHA-256(origin)>/checkpoint returns the latest
// checkpoint the witness cosigned for that log, with the log's signature(s)
// and the cosignature, or 404 if it never cosigned one.
package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

const (
	// MaxRequestBodyBytes bounds an add-checkpoint body (as omniwitness).
	MaxRequestBodyBytes = 16 << 10
	// MaxProofLines is the most consistency-proof lines a request may carry.
	MaxProofLines = 63
	// SizeContentType is the Content-Type of a 409 answer.
	SizeContentType = "text/x.tlog.size"
)

// Config configures a Witness.
type Config struct {
	// State keeps the witness's state. Open takes it over: Witness.Close
	// closes it (if Open fails, the caller still owns it).
	State StateStore
	// Signer produces the witness's cosignatures; it must be a
	// cosignature/v1 signer such as verify.NewCosignatureSignerFromKey
	// returns. Its name is the witness name.
	Signer note.Signer
	// Logs are the trusted log keys (Ed25519 note verifiers). A key's name
	// is the origin of the log it signs; a log may have several keys.
	Logs []note.Verifier
	// Logger receives request failures worth keeping (default: discard).
	Logger *slog.Logger
}

// StateStore keeps a witness's state: for each log, by origin, the latest
// checkpoint the witness cosigned (as GET /<hash>/checkpoint serves it),
// with its size and root hash. store/witnessdb implements it in SQLite.
//
// An implementation must be safe for concurrent use, make each
// CompareAndSwap atomic against every other one on the same state (other
// processes sharing its storage included), and make the new state durable
// before CompareAndSwap returns true: the witness sends the cosignature only
// then, and a state that a crash could roll back would let it cosign a fork.
type StateStore interface {
	// Get returns the size and root hash of origin's state; ok is false if
	// origin has none yet.
	Get(ctx context.Context, origin string) (size uint64, root [32]byte, ok bool, err error)
	// Checkpoint returns origin's stored checkpoint, byte for byte as
	// stored; ok is false if origin has none yet.
	Checkpoint(ctx context.Context, origin string) (checkpoint []byte, ok bool, err error)
	// CompareAndSwap replaces origin's state by (size, root, checkpoint) if
	// it is still (oldSize, oldRoot), where a log without a state counts as
	// size 0 with the empty tree's root SHA-256(""). It reports whether it
	// replaced it (false with a nil error: the state was another one, and
	// nothing changed); true means the new state is durable.
	CompareAndSwap(ctx context.Context, origin string, oldSize uint64, oldRoot [32]byte, size uint64, root [32]byte, checkpoint []byte) (swapped bool, err error)
	// Close releases the store.
	Close() error
}

// Witness is a running witness. It is safe for concurrent use.
type Witness struct {
	state  StateStore
	signer note.Signer
	logs   map[string]*logState // by origin, read-only after Open
	byHash map[string]string    // hex SHA-256(origin) -> origin
	logger *slog.Logger
}

// logState holds what is fixed about one log, and the lock that serialises
// its updates in this process (the CAS protects across processes).
type logState struct {
	origin    string
	verifiers note.Verifiers
	mu        sync.Mutex
}

// Open returns a witness keeping its state in cfg.State.
func Open(cfg Config) (*Witness, error) {
	if cfg.State == nil {
		return nil, errors.New("witness: no state store")
	}
	if cfg.Signer == nil {
		return nil, errors.New("witness: no signer")
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("witness: no trusted logs configured")
	}
	w := &Witness{
		state:  cfg.State,
		signer: cfg.Signer,
		logs:   map[string]*logState{},
		byHash: map[string]string{},
		logger: cfg.Logger,
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	perOrigin := map[string][]note.Verifier{}
	seen := map[string]bool{}
	for _, v := range cfg.Logs {
		if v == nil {
			return nil, errors.New("witness: nil log verifier")
		}
		k := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
		if seen[k] {
			return nil, fmt.Errorf("witness: log key %s configured twice", k)
		}
		seen[k] = true
		perOrigin[v.Name()] = append(perOrigin[v.Name()], v)
	}
	for origin, vs := range perOrigin {
		w.logs[origin] = &logState{origin: origin, verifiers: note.VerifierList(vs...)}
		sum := sha256.Sum256([]byte(origin))
		w.byHash[hex.EncodeToString(sum[:])] = origin
	}
	return w, nil
}

// Close closes the state store.
func (w *Witness) Close() error {
	return w.state.Close()
}

// Name is the witness name (the signer's key name).
func (w *Witness) Name() string { return w.signer.Name() }

// Handler returns the witness's HTTP handler.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.addCheckpoint)
	mux.HandleFunc("GET /{hash}/checkpoint", w.getCheckpoint)
	return mux
}

// state is a log's stored state; a log without one is at the empty tree.
type state struct {
	size uint64
	root [32]byte
}

func (w *Witness) readState(ctx context.Context, origin string) (state, error) {
	size, root, ok, err := w.state.Get(ctx, origin)
	if err != nil {
		return state{}, err
	}
	if !ok {
		return state{root: verify.EmptyRoot}, nil
	}
	return state{size: size, root: root}, nil
}

// request is a parsed add-checkpoint body.
type request struct {
	old   uint64
	proof [][32]byte
	note  []byte
}

func parseRequest(body []byte) (request, error) {
	var r request
	i := bytes.Index(body, []byte("\n\n"))
	if i < 0 {
		return r, errors.New("no blank line after the header")
	}
	header, msg := string(body[:i]), body[i+2:]
	lines := strings.Split(header, "\n")
	oldStr, ok := strings.CutPrefix(lines[0], "old ")
	if !ok {
		return r, errors.New("first line is not \"old <size>\"")
	}
	old, err := strconv.ParseUint(oldStr, 10, 64)
	if err != nil || strconv.FormatUint(old, 10) != oldStr {
		return r, fmt.Errorf("old size %q is not a canonical decimal number", oldStr)
	}
	r.old = old
	if len(lines)-1 > MaxProofLines {
		return r, fmt.Errorf("%d proof lines, at most %d allowed", len(lines)-1, MaxProofLines)
	}
	for _, l := range lines[1:] {
		b, err := base64.StdEncoding.Strict().DecodeString(l)
		if err != nil || len(b) != 32 || base64.StdEncoding.EncodeToString(b) != l {
			return r, fmt.Errorf("proof line %q is not a base64 SHA-256 hash", l)
		}
		r.proof = append(r.proof, [32]byte(b))
	}
	r.note = msg
	return r, nil
}

func httpError(rw http.ResponseWriter, code int, msg string) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(code)
	fmt.Fprintln(rw, msg)
}

func conflict(rw http.ResponseWriter, size uint64) {
	rw.Header().Set("Content-Type", SizeContentType)
	rw.WriteHeader(http.StatusConflict)
	fmt.Fprintf(rw, "%d\n", size)
}

func (w *Witness) addCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := readBody(rw, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(rw, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxRequestBodyBytes))
			return
		}
		httpError(rw, http.StatusBadRequest, "reading request body: "+err.Error())
		return
	}
	req, err := parseRequest(body)
	if err != nil {
		httpError(rw, http.StatusBadRequest, "malformed request: "+err.Error())
		return
	}
	// The origin is only used to pick the keys; nothing else in the text is
	// looked at before a trusted key verified it.
	origin, _, ok := bytes.Cut(req.note, []byte("\n"))
	if !ok || len(origin) == 0 {
		httpError(rw, http.StatusBadRequest, "malformed checkpoint: no origin line")
		return
	}
	ls := w.logs[string(origin)]
	if ls == nil {
		httpError(rw, http.StatusNotFound, fmt.Sprintf("unknown log %q", origin))
		return
	}
	log := w.logger.With("origin", ls.origin)
	cp, n, err := verify.OpenCheckpoint(req.note, ls.origin, ls.verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.Is(err, verify.ErrMalformedNote):
			httpError(rw, http.StatusBadRequest, err.Error())
		case errors.As(err, &unverified), errors.As(err, &invalid), errors.Is(err, verify.ErrOriginMismatch):
			httpError(rw, http.StatusForbidden, err.Error())
		case errors.Is(err, verify.ErrMalformedCheckpoint):
			// The signature was verified before the body was parsed.
			if zeroSizeWrongRoot(req.note) {
				log.Warn("signed size-0 checkpoint with a root other than the empty tree's", "error", err)
				httpError(rw, http.StatusUnprocessableEntity, "checkpoint of size 0 must have root SHA-256(\"\")")
				return
			}
			httpError(rw, http.StatusBadRequest, err.Error())
		default:
			log.Error("checking checkpoint signatures", "error", err)
			httpError(rw, http.StatusInternalServerError, "internal error")
		}
		return
	}
	if req.old > cp.Size {
		httpError(rw, http.StatusBadRequest, fmt.Sprintf("old size %d is larger than the checkpoint size %d", req.old, cp.Size))
		return
	}

	ls.mu.Lock()
	defer ls.mu.Unlock()
	ctx := r.Context()
	st, err := w.readState(ctx, ls.origin)
	if err != nil {
		log.Error("reading state", "error", err)
		httpError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	if req.old != st.size {
		conflict(rw, st.size)
		return
	}
	if req.old == 0 && len(req.proof) > 0 {
		log.Warn("old size 0 with a consistency proof", "size", cp.Size, "proof_lines", len(req.proof))
		httpError(rw, http.StatusUnprocessableEntity, "old size 0 needs an empty consistency proof")
		return
	}
	if err := verify.CheckConsistency(st.size, cp.Size, st.root, cp.Root, req.proof); err != nil {
		log.Warn("checkpoint not consistent with the cosigned state: possible log misbehaviour",
			"stored_size", st.size, "stored_root", b64(st.root),
			"size", cp.Size, "root", b64(cp.Root), "error", err,
			"checkpoint", string(req.note))
		httpError(rw, http.StatusUnprocessableEntity, "checkpoint is not consistent with the last one cosigned: "+err.Error())
		return
	}

	cosig, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		log.Error("cosigning", "error", err)
		httpError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	lines := cosig[len(n.Text)+1:]
	var stored bytes.Buffer
	stored.WriteString(n.Text)
	stored.WriteByte('\n')
	for _, s := range n.Sigs {
		fmt.Fprintf(&stored, "— %s %s\n", s.Name, s.Base64)
	}
	stored.Write(lines)

	ok, err = w.state.CompareAndSwap(ctx, ls.origin, st.size, st.root, cp.Size, cp.Root, stored.Bytes())
	if err != nil {
		log.Error("storing state", "error", err)
		httpError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	if !ok {
		// Another process changed the state after we read it.
		cur, err := w.readState(ctx, ls.origin)
		if err != nil {
			log.Error("reading state", "error", err)
			httpError(rw, http.StatusInternalServerError, "internal error")
			return
		}
		conflict(rw, cur.size)
		return
	}
	log.Info("cosigned", "old", st.size, "size", cp.Size, "root", b64(cp.Root))
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.WriteHeader(http.StatusOK)
	rw.Write(lines)
}

func readBody(rw http.ResponseWriter, r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(rw, r.Body, MaxRequestBodyBytes))
	return buf.Bytes(), err
}

// zeroSizeWrongRoot reports whether the signed note msg (already verified)
// is a checkpoint that would be valid but for a size of 0 with a root other
// than the empty tree's.
func zeroSizeWrongRoot(msg []byte) bool {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return false
	}
	lines := strings.SplitN(string(msg[:i+1]), "\n", 4)
	if len(lines) < 4 || lines[1] != "0" {
		return false
	}
	lines[2] = b64(verify.EmptyRoot)
	_, err := verify.ParseCheckpoint([]byte(strings.Join(lines, "\n")))
	return err == nil
}

func b64(h [32]byte) string { return base64.StdEncoding.EncodeToString(h[:]) }

func (w *Witness) getCheckpoint(rw http.ResponseWriter, r *http.Request) {
	origin, ok := w.byHash[r.PathValue("hash")]
	if !ok {
		httpError(rw, http.StatusNotFound, "unknown log")
		return
	}
	cp, ok, err := w.state.Checkpoint(r.Context(), origin)
	if err != nil {
		w.logger.Error("reading checkpoint", "origin", origin, "error", err)
		httpError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	if !ok {
		httpError(rw, http.StatusNotFound, "no checkpoint cosigned for this log yet")
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-cache")
	rw.Write(cp)
}
