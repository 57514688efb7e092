package log

// Witnessing (c2sp.org/tlog-witness, client side).
//
// With Config.Witnesses set, the log sends each new checkpoint to every
// witness concurrently (POST <URL>/add-checkpoint), with a consistency proof
// from the size that witness last cosigned (a hint kept in memory, starting
// at 0 and corrected from the witness's 409 answers), and collects the
// cosignature lines that verify with that witness's key.
//
// Required mode (Config.Quorum > 0 or Config.QuorumFunc set): a checkpoint is
// published (served at /checkpoint and used in receipts) only once the
// quorum of witnesses cosigned it, with the cosignatures appended after the
// log's signature. The committer witnesses each checkpoint synchronously
// after its batch is durable and before it answers the batch's callers. If
// the quorum is not met, those callers get ErrUnavailable although their
// events are durably committed; the previous cosigned checkpoint stays
// published. A retry of the same events is deduplicated (it finds the
// original indexes) and, since the published checkpoint does not cover the
// newest committed one, the committer witnesses the newest committed
// checkpoint again before answering: the retry gets its original indexes
// with a cosigned checkpoint, or ErrUnavailable again. Every later batch
// also retries, as the published checkpoint lags the committed one.
// Consequences, by design: entries committed but not yet cosigned are not
// readable (the read API follows the published checkpoint), and witnessing
// adds a round trip to each batch (the pipeline waits for it).
//
// Every cosigned note is stored (in place of the log-signed note of the
// same checkpoint, which it extends) before it is published, so what is
// served is what the store holds: after a restart, the stored cosigned
// checkpoint is served at once, and mirrors made from the store and copies
// carry the cosignatures. In required mode a cosigned checkpoint that
// cannot be stored is not published (its callers get ErrUnavailable, as
// without a quorum). At Open, a stored checkpoint whose note does not carry
// the cosignatures (a crash between the commit and the write-back, or a
// log that was not witnessed before) is witnessed once; if that fails, the
// log-signed checkpoint is served until the next batch is cosigned.
//
// Optional mode (witnesses but no quorum): each published checkpoint is sent
// to the witnesses in the background, and once an answer arrives the
// published note is replaced by the same checkpoint with the cosignatures
// that verified (if it is still the newest). Receipts do not wait for it.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// DefaultWitnessTimeout bounds one round of witnessing (all witnesses, with
// their 409 retries).
const DefaultWitnessTimeout = 5 * time.Second

// witnessSizeType is the Content-Type of a witness's 409 answer.
const witnessSizeType = "text/x.tlog.size"

// maxWitnessAttempts bounds the requests per witness per checkpoint (the
// first one and the retries after 409).
const maxWitnessAttempts = 3

// Witness is a c2sp.org/tlog-witness the log asks to cosign its checkpoints.
type Witness struct {
	// URL is the witness's submission prefix: requests go to
	// URL + "/add-checkpoint".
	URL string
	// Verifier checks the witness's cosignatures: a cosignature/v1 (0x04)
	// verifier such as verify.NewCosignatureVerifier returns. Its name
	// labels the witness in logs and metrics.
	Verifier note.Verifier
}

// errWitnessAhead means a witness cosigned a larger tree than ours.
// ErrNoQuorum (wrapped with ErrUnavailable) means the batch is durably
// stored but the witness quorum has not cosigned a checkpoint covering it.
var ErrNoQuorum = errors.New("witness quorum not reached")

var errWitnessAhead = errors.New("witness has cosigned a larger tree than this log's")

// witnessClient talks to one witness; mu serialises its rounds so that the
// size hint follows the witness's state.
type witnessClient struct {
	w    Witness
	name string
	hc   *http.Client

	mu   sync.Mutex
	hint uint64 // the size the witness last cosigned, as far as we know
}

func (l *Log) initWitnesses() {
	if l.cfg.WitnessTimeout <= 0 {
		l.cfg.WitnessTimeout = DefaultWitnessTimeout
	}
	hc := &http.Client{}
	for _, w := range l.cfg.Witnesses {
		l.witnesses = append(l.witnesses, &witnessClient{w: w, name: w.Verifier.Name(), hc: hc})
	}
	if len(l.witnesses) > 0 && !l.witnessRequired() {
		l.witnessKick = make(chan struct{}, 1)
		l.witnessDone = make(chan struct{})
	}
}

// witnessRequired reports whether checkpoints are published only once
// cosigned by a quorum.
func (l *Log) witnessRequired() bool {
	return l.cfg.Quorum > 0 || l.cfg.QuorumFunc != nil
}

// quorumMet reports whether the cosigned note (n witnesses' cosignatures
// appended) meets the configured quorum.
func (l *Log) quorumMet(signed []byte, cp store.Checkpoint, n int) bool {
	if l.cfg.QuorumFunc != nil {
		return l.cfg.QuorumFunc(signed, l.checkpointText(cp))
	}
	return n >= l.cfg.Quorum
}

// witnessRound asks every witness, concurrently and within WitnessTimeout,
// to cosign cp (proofs come from src, a node source over a tree of at least
// cp.Size). It returns cp.Note with the verified cosignature lines appended
// (in configuration order) and how many witnesses cosigned.
func (l *Log) witnessRound(ctx context.Context, src *nodeSource, cp store.Checkpoint) ([]byte, int) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.WitnessTimeout)
	defer cancel()
	lines := make([][]byte, len(l.witnesses))
	var wg sync.WaitGroup
	for i, c := range l.witnesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.add(ctx, l, src, cp)
			if err != nil {
				l.logger.Warn("witness did not cosign", "witness", c.name, "url", c.w.URL, "size", cp.Size, "err", err)
				return
			}
			lines[i] = b
		}()
	}
	wg.Wait()
	out := bytes.Clone(cp.Note)
	n := 0
	for _, b := range lines {
		if b != nil {
			out = append(out, b...)
			n++
		}
	}
	return out, n
}

// witnessAndPublish witnesses cp (the newest committed checkpoint, of tree
// t) and publishes it with its cosignatures if the quorum is met.
func (l *Log) witnessAndPublish(ctx context.Context, t *treeState, cp store.Checkpoint) error {
	src := t.nodeSource(l.st, l.cache)
	signed, n := l.witnessRound(ctx, src, cp)
	if !l.quorumMet(signed, cp, n) {
		l.logger.Error("witness quorum not met: the checkpoint is not published", "size", cp.Size, "cosigned", n, "witnesses", len(l.witnesses))
		if m := l.cfg.Metrics; m != nil {
			m.WitnessQuorumFailures.Inc()
		}
		return fmt.Errorf("%w: %w: the witness quorum did not cosign checkpoint %d (%d of %d witnesses cosigned); the events are stored, retry to get receipts", ErrUnavailable, ErrNoQuorum, cp.Size, n, len(l.witnesses))
	}
	// Store the cosigned note before serving it: what is published is
	// what a restart, a mirror of the store or a copy will carry.
	cp.Note = signed
	stored, err := l.storeCosigned(ctx, cp)
	if err != nil {
		l.logger.Error("the cosigned checkpoint could not be stored: it is not published", "size", cp.Size, "err", err)
		return fmt.Errorf("%w: %w; the events are stored, retry to get receipts", ErrUnavailable, err)
	}
	l.snap.Store(&snapshot{cp: stored, src: src, cosigned: true})
	if l.cfg.Metrics != nil {
		l.cfg.Metrics.TreeSize.Set(float64(cp.Size))
	}
	return nil
}

// kickWitnesses wakes the background witnessing loop (optional mode).
func (l *Log) kickWitnesses() {
	if l.witnessKick == nil {
		return
	}
	select {
	case l.witnessKick <- struct{}{}:
	default:
	}
}

// witnessLoop (optional mode) witnesses the published checkpoint whenever
// kicked and, if it is still the published one, swaps in the cosigned note.
func (l *Log) witnessLoop() {
	defer close(l.witnessDone)
	ctx := l.ctx
	for {
		select {
		case <-l.witnessKick:
		case <-l.stop:
			return
		}
		s := l.snap.Load()
		if s.cosigned {
			continue
		}
		signed, n := l.witnessRound(ctx, s.src, s.cp)
		if n == 0 {
			continue
		}
		cp := s.cp
		cp.Note = signed
		// Stored first, then served. If the log has moved on meanwhile,
		// the store refuses (only the newest checkpoint's note can
		// change) and the newer checkpoint is witnessed next.
		stored, err := l.storeCosigned(ctx, cp)
		if err != nil {
			l.logger.Debug("cosigned checkpoint not stored", "size", cp.Size, "err", err)
			continue
		}
		l.snap.CompareAndSwap(s, &snapshot{cp: stored, src: s.src, cosigned: true})
	}
}

// add asks the witness to cosign cp and returns the cosignature lines that
// verify with its key.
func (c *witnessClient) add(ctx context.Context, l *Log, src *nodeSource, cp store.Checkpoint) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; attempt < maxWitnessAttempts; attempt++ {
		if c.hint > cp.Size {
			return nil, fmt.Errorf("%w: it cosigned size %d, ours is %d", errWitnessAhead, c.hint, cp.Size)
		}
		var body bytes.Buffer
		fmt.Fprintf(&body, "old %d\n", c.hint)
		if c.hint > 0 && c.hint < cp.Size {
			p, err := consistency(ctx, src, c.hint, cp.Size)
			if err != nil {
				return nil, fmt.Errorf("consistency proof %d to %d: %w", c.hint, cp.Size, err)
			}
			for _, h := range p {
				body.WriteString(base64.StdEncoding.EncodeToString(h))
				body.WriteByte('\n')
			}
		}
		body.WriteByte('\n')
		body.Write(cp.Note)

		code, ctype, resp, err := c.post(ctx, l, body.Bytes())
		if err != nil {
			return nil, err
		}
		switch {
		case code == http.StatusOK:
			n, err := note.Open(append(bytes.Clone(cp.Note), resp...), note.VerifierList(c.w.Verifier))
			if err != nil {
				return nil, fmt.Errorf("cosignature does not verify: %w", err)
			}
			var out []byte
			for _, s := range n.Sigs {
				out = fmt.Appendf(out, "— %s %s\n", s.Name, s.Base64)
			}
			c.hint = cp.Size
			return out, nil
		case code == http.StatusConflict && ctype == witnessSizeType:
			size, err := strconv.ParseUint(strings.TrimSuffix(string(resp), "\n"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("409 with a malformed size %q", resp)
			}
			c.hint = size
			if size > cp.Size {
				return nil, fmt.Errorf("%w: it cosigned size %d, ours is %d", errWitnessAhead, size, cp.Size)
			}
			l.logger.Debug("witness size hint updated", "witness", c.name, "size", size)
		default:
			return nil, fmt.Errorf("status %d: %q", code, truncate(resp, 200))
		}
	}
	return nil, fmt.Errorf("no cosignature after %d attempts (409 each time)", maxWitnessAttempts)
}

// post sends one add-checkpoint request and records its metrics.
func (c *witnessClient) post(ctx context.Context, l *Log, body []byte) (int, string, []byte, error) {
	start := time.Now()
	code, ctype, resp, err := c.do(ctx, body)
	if m := l.cfg.Metrics; m != nil {
		label := strconv.Itoa(code)
		if err != nil {
			label = "error"
		}
		m.WitnessRequests.WithLabelValues(c.name, label).Inc()
		m.WitnessLatency.WithLabelValues(c.name).Observe(time.Since(start).Seconds())
	}
	return code, ctype, resp, err
}

func (c *witnessClient) do(ctx context.Context, body []byte) (int, string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.w.URL, "/")+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return 0, "", nil, fmt.Errorf("reading the answer: %w", err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), b, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// consistency returns the RFC 6962 consistency proof from size from to size
// to, reading nodes from src (a tree of at least size to).
func consistency(ctx context.Context, src *nodeSource, from, to uint64) ([][]byte, error) {
	n, err := proof.Consistency(from, to)
	if err != nil {
		return nil, err
	}
	hashes, err := src.nodes(ctx, n.IDs)
	if err != nil {
		return nil, err
	}
	return n.Rehash(hashes, hashChildren)
}
