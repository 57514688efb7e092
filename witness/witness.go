// Package witness is a C2SP tlog-witness (c2sp.org/tlog-witness): it
// cosigns checkpoints of the logs it is configured to trust, but only after
// checking that each new checkpoint extends the last one it cosigned for
// that log.
//
// # Guarantees
//
// For each configured log (identified by its origin, the name of its key) the
// witness keeps exactly one state, the size and root hash of the latest
// checkpoint it cosigned, in a SQLite database (WAL mode, synchronous=FULL).
// It promises:
//
//   - It cosigns a checkpoint only if it carries a valid signature from a
//     configured key for its origin, and no configured key's signature on it
//     is bad.
//   - It cosigns a checkpoint of size N with root R only if (N, R) equals
//     the stored state or a valid RFC 6962 consistency proof leads from the
//     stored state to (N, R). Hence every root it ever cosigned for a log is
//     a prefix of every later one, and it never cosigns two different roots
//     for the same size of one log.
//   - The new state is written by compare-and-swap on the previous size and
//     root (UPDATE … WHERE origin=? AND size=? AND root=?) and committed
//     durably before the cosignature leaves the process. Concurrent requests,
//     in this process or in others sharing the database, and restarts
//     (including crashes) cannot roll the state back or fork it.
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
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custodylog/custody/verify"
	_ "github.com/mattn/go-sqlite3"
	"golang.org/x/mod/sumdb/note"
)

const (
	// MaxRequestBodyBytes bounds an add-checkpoint body (as omniwitness).
	MaxRequestBodyBytes = 16 << 10
	// MaxProofLines is the most consistency-proof lines a request may carry.
	MaxProofLines = 63
	// DBName is the name of the state database inside Config.Dir.
	DBName = "witness.db"
	// SizeContentType is the Content-Type of a 409 answer.
	SizeContentType = "text/x.tlog.size"
)

// Config configures a Witness.
type Config struct {
	// Dir is the directory holding the SQLite state (DBName). It must exist.
	Dir string
	// Signer produces the witness's cosignatures; it must be a
	// cosignature/v1 signer such as verify.NewCosignatureSignerFromKey
	// returns. Its name is the witness name.
	Signer note.Signer
	// Logs are the trusted log keys (Ed25519 note verifiers). A key's name
	// is the origin of the log it signs; a log may have several keys.
	Logs []note.Verifier
	// Logger receives request failures worth keeping (default: discard).
	Logger *slog.Logger
	// Now is the clock used for the state's update time (default time.Now).
	Now func() time.Time
}

// Witness is a running witness. It is safe for concurrent use.
type Witness struct {
	db     *sql.DB
	signer note.Signer
	logs   map[string]*logState // by origin, read-only after Open
	byHash map[string]string    // hex SHA-256(origin) -> origin
	logger *slog.Logger
	now    func() time.Time
}

// logState holds what is fixed about one log, and the lock that serialises
// its updates in this process (the CAS protects across processes).
type logState struct {
	origin    string
	verifiers note.Verifiers
	mu        sync.Mutex
}

const schema = `CREATE TABLE IF NOT EXISTS log (
	origin     TEXT PRIMARY KEY,
	size       INTEGER NOT NULL,
	root       BLOB NOT NULL,
	checkpoint BLOB NOT NULL,
	updated    INTEGER NOT NULL
)`

// Open opens (creating it if needed) the witness state in cfg.Dir.
func Open(cfg Config) (*Witness, error) {
	if cfg.Dir == "" {
		return nil, errors.New("witness: no state directory")
	}
	if cfg.Signer == nil {
		return nil, errors.New("witness: no signer")
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("witness: no trusted logs configured")
	}
	w := &Witness{
		signer: cfg.Signer,
		logs:   map[string]*logState{},
		byHash: map[string]string{},
		logger: cfg.Logger,
		now:    cfg.Now,
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
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
	fi, err := os.Stat(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("witness: state directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("witness: %s is not a directory", cfg.Dir)
	}
	abs, err := filepath.Abs(filepath.Join(cfg.Dir, DBName))
	if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	params := url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_busy_timeout": {"5000"},
		"_txlock":       {"immediate"},
	}
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath() + "?" + params.Encode()
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("witness: opening %s: %w", abs, err)
	}
	// One connection: every statement is serialised, and the pragmas of the
	// DSN are in effect on it.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := checkDB(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("witness: opening %s: %w", abs, err)
	}
	w.db = db
	return w, nil
}

func checkDB(db *sql.DB) error {
	ctx := context.Background()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("reading journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want \"wal\"", mode)
	}
	var syncMode int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
		return fmt.Errorf("reading synchronous: %w", err)
	}
	if syncMode != 2 {
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", syncMode)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("creating schema: %w", err)
	}
	return nil
}

// Close closes the state database.
func (w *Witness) Close() error {
	return w.db.Close()
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

// state is a log's stored state.
type state struct {
	size   uint64
	root   [32]byte
	exists bool
}

func (w *Witness) readState(ctx context.Context, origin string) (state, error) {
	var size int64
	var root []byte
	err := w.db.QueryRowContext(ctx, "SELECT size, root FROM log WHERE origin = ?", origin).Scan(&size, &root)
	if errors.Is(err, sql.ErrNoRows) {
		return state{root: verify.EmptyRoot}, nil
	}
	if err != nil {
		return state{}, err
	}
	if len(root) != 32 {
		return state{}, fmt.Errorf("stored root of %q is %d bytes", origin, len(root))
	}
	s := state{size: uint64(size), exists: true}
	copy(s.root[:], root)
	return s, nil
}

// casState replaces prev with the new state; it reports false if the stored
// state was not prev any more.
func (w *Witness) casState(ctx context.Context, origin string, prev state, size uint64, root [32]byte, checkpoint []byte) (bool, error) {
	now := w.now().Unix()
	var res sql.Result
	var err error
	if prev.exists {
		res, err = w.db.ExecContext(ctx,
			"UPDATE log SET size = ?, root = ?, checkpoint = ?, updated = ? WHERE origin = ? AND size = ? AND root = ?",
			int64(size), root[:], checkpoint, now, origin, int64(prev.size), prev.root[:])
	} else {
		res, err = w.db.ExecContext(ctx,
			"INSERT INTO log (origin, size, root, checkpoint, updated) VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO NOTHING",
			origin, int64(size), root[:], checkpoint, now)
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
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

	ok, err = w.casState(ctx, ls.origin, st, cp.Size, cp.Root, stored.Bytes())
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
	var cp []byte
	err := w.db.QueryRowContext(r.Context(), "SELECT checkpoint FROM log WHERE origin = ?", origin).Scan(&cp)
	if errors.Is(err, sql.ErrNoRows) {
		httpError(rw, http.StatusNotFound, "no checkpoint cosigned for this log yet")
		return
	}
	if err != nil {
		w.logger.Error("reading checkpoint", "origin", origin, "error", err)
		httpError(rw, http.StatusInternalServerError, "internal error")
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-cache")
	rw.Write(cp)
}
