// Package log is the writer side of custody: the sequencer that turns
// submitted events into durable, signed, tiled log entries. It knows no
// HTTP (package httpapi serves it) and decodes no committed event (package
// stats counts them, fed by Config.OnCommit).
//
// Open starts the log: its sequencer and committer goroutines (and, with
// optional witnessing, the witness loop) run under a context of the log's
// own lifetime until Shutdown (or Close) ends it.
//
// Add and AddMany may be called from any number of goroutines. Their events
// are batched (group commit): each batch becomes one store transaction with
// its entries, the hash tiles it changes and one new signed checkpoint. A
// caller is answered only after that transaction is durable, with a receipt
// holding an inclusion proof against the new checkpoint, and the checkpoint
// is published (served to readers) only after that too. An event identical
// to one already logged (same record.Event.Identity) is not added again: its
// receipt carries the original index and entry.
package log

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/custodylog/custody/internal/tiles"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/sampleindex"
	"github.com/custodylog/custody/site"
	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// Defaults for Config.
const (
	DefaultMaxBatch = 1024
	DefaultMaxWait  = 2 * time.Millisecond
	// DefaultCommitTimeout bounds the store calls of one batch.
	DefaultCommitTimeout = 30 * time.Second
	// DefaultShutdownTimeout is how long Close lets Shutdown wait.
	DefaultShutdownTimeout = 30 * time.Second
)

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("log is shutting down")

// ErrUnavailable wraps failures to commit a batch (disk full, read-only
// database, lost connection). Nothing of the batch was published; callers
// may retry (adds are idempotent).
var ErrUnavailable = errors.New("log storage unavailable")

// ErrBeyondTree is returned when a request names a size or index beyond the
// published tree.
var ErrBeyondTree = errors.New("beyond the published tree")

// Config configures a Log.
type Config struct {
	// Store holds the log. It must have been initialised with Create.
	Store store.Store
	// Signer signs checkpoints; its name is the log's origin.
	Signer note.Signer
	// Verifier is the public half of Signer. Every checkpoint is opened with
	// it (by the same parser auditors use) before it is published.
	Verifier note.Verifier
	// MaxBatch is the most events one batch takes (a request's events are
	// never split, so a batch may exceed it by one request). 0: DefaultMaxBatch.
	MaxBatch int
	// MaxWait is how long the sequencer waits for more events once it has
	// one, before committing a batch that is not full. 0: DefaultMaxWait;
	// negative: do not wait (commit what has arrived).
	MaxWait time.Duration
	// CommitTimeout bounds the store calls of one batch: the identity
	// look-up, the commit (store.Append) and a reload. A commit that does
	// not finish in time fails like any failed commit: its callers get
	// ErrUnavailable (wrapping context.DeadlineExceeded), nothing of it is
	// published, and the log reloads from the store before the next batch.
	// It relies on the store returning once its context is done, as both
	// stores do. 0: DefaultCommitTimeout.
	CommitTimeout time.Duration
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Metrics, if non-nil, is updated as batches commit.
	Metrics *Metrics
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// Witnesses are asked to cosign every new checkpoint (see witness.go).
	Witnesses []Witness
	// Quorum, if positive, is how many Witnesses must cosign a checkpoint
	// before it is published; receipts then always carry cosigned
	// checkpoints. 0 with Witnesses: cosignatures are collected in the
	// background and added to the published note when they arrive.
	Quorum int
	// QuorumFunc, if set, decides instead of Quorum whether a note (the
	// log's signature followed by the verified cosignatures) meets the
	// quorum, e.g. with verify.TrustPolicy.Evaluate. Setting it makes
	// cosigning required, as Quorum > 0 does.
	QuorumFunc func(signed []byte, cp verify.Checkpoint) bool
	// WitnessTimeout bounds one round of witnessing. 0: DefaultWitnessTimeout.
	WitnessTimeout time.Duration

	// Shared says other servers share the store (see Sync). (Cosigned
	// notes are written back to the store in every mode, so the other
	// servers can publish them too.)
	Shared bool

	// OnCommit, if set, is told every committed tree the log moves to: by
	// Open with the stored checkpoint, after each batch is durably
	// committed with that batch's new entries (in index order), and with
	// no entries when the log reloads from the store (after a failed
	// commit, which may have reached the disk) or takes a checkpoint
	// another server stored (Sync). Calls come one at a time, in order of
	// size. It runs on the commit path: it must not block, nor keep the
	// log waiting (stats.Counter.Committed only queues). The entries must
	// not be modified.
	OnCommit func(cp store.Checkpoint, entries []store.Entry)

	// SampleIndex configures the verifiable sample index (sampleindex.go),
	// kept when the store implements store.SampleMap.
	SampleIndex SampleIndexOptions

	// Sites, if set, are the site keys that signed submissions are
	// verified with (SubmitGroups, docs/site-signing.md); without them
	// signed submissions are refused.
	Sites *site.Set
	// RequireSignatures refuses unsigned events (SiteMode "required").
	RequireSignatures bool
}

// Log is an open, running log. Create it with Open; stop it with
// Shutdown or Close.
type Log struct {
	cfg    Config
	origin string
	st     store.Store
	cache  *tileCache
	logger *slog.Logger

	// ctx is the log's lifetime: every store call of the background work
	// runs under it, and Shutdown cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	reqs   chan *pending
	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	stop   chan struct{}
	done   chan struct{} // closed when the sequencer and the committer have stopped

	// Owned by the sequencer goroutine: the newest prepared state, which
	// may be ahead of the published (committed) one.
	state *treeState // nil: reload from the store
	cur   store.Checkpoint

	snap atomic.Pointer[snapshot]

	// The pipeline from the sequencer to the committer.
	commits    chan *prepared
	committed  chan struct{} // closed when the committer has stopped
	broken     atomic.Bool   // a commit failed: reload before the next batch
	inflightMu sync.Mutex
	inflight   map[store.Hash]slot // prepared, not yet committed

	syncs chan syncRequest // Sync requests, served by the sequencer

	witnesses   []*witnessClient
	witnessKick chan struct{} // optional mode: wakes witnessLoop
	witnessDone chan struct{} // optional mode: closed when witnessLoop stops

	idx *SampleIndexWriter // nil: no sample index (sampleindex.go)
}

// snapshot is what readers see: the newest durable checkpoint and the
// right-edge tiles of its tree.
type snapshot struct {
	cp       store.Checkpoint
	src      *nodeSource
	cosigned bool // cp.Note carries the witnesses' cosignatures
}

type pending struct {
	events []record.Event
	ids    []store.Hash
	atts   []pendingAtt // signed groups, in order (attest.go)
	err    error        // refused by the sequencer (placeSigned)
	enq    time.Time
	done   chan result
}

// result is what the committer hands a submitter: where each of its
// events ended up, and the snapshot its receipts prove against.
type result struct {
	slots []slot
	snap  *snapshot
	err   error
}

// Create writes the first, size-0 checkpoint of a new log into an empty
// store, committing an empty sample index when the store can keep one
// (CreateWith with SampleIndex). It fails (wrapping store.ErrConflict) if
// the store already holds a log.
func Create(ctx context.Context, st store.Store, signer note.Signer) error {
	return CreateWith(ctx, st, signer, CreateOptions{SampleIndex: true})
}

// CreateOptions choose what a new log commits from its first checkpoint.
type CreateOptions struct {
	// SampleIndex: the first checkpoint commits the (empty) verifiable
	// sample index, so the log keeps it from then on (sampleindex.go),
	// if the store can keep one.
	SampleIndex bool
}

// CreateWith is Create with options.
func CreateWith(ctx context.Context, st store.Store, signer note.Signer, o CreateOptions) error {
	root := tiles.EmptyRoot
	var ext []string
	if _, ok := st.(store.SampleMap); ok && o.SampleIndex {
		ext = append(ext, sampleindex.FormatExtension(sampleindex.EmptyMapRoot))
	}
	signed, err := signCheckpoint(signer, 0, root, ext...)
	if err != nil {
		return err
	}
	return st.Append(ctx, store.Batch{Checkpoint: store.Checkpoint{Size: 0, Root: root, Note: signed}})
}

// signCheckpoint returns the signed note of a c2sp.org/tlog-checkpoint
// with extension lines ext after the three standard lines.
func signCheckpoint(signer note.Signer, size uint64, root store.Hash, ext ...string) ([]byte, error) {
	text := verify.Checkpoint{Origin: signer.Name(), Size: size, Root: root, Extensions: ext}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		return nil, fmt.Errorf("signing checkpoint of size %d: %w", size, err)
	}
	return signed, nil
}

// Open loads the log from cfg.Store, checks that the stored tiles reproduce
// the latest checkpoint's root and that the checkpoint verifies with
// cfg.Verifier, and starts the log: the sequencer and the committer run
// until Shutdown. (Open rather than a separate Run, because an open log
// that is not running would only queue submissions: there is nothing to
// do with it but start it.) ctx bounds the loading only; the log's own
// work runs under a context of its own, which keeps ctx's values.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if cfg.Store == nil || cfg.Signer == nil || cfg.Verifier == nil {
		return nil, errors.New("log: Store, Signer and Verifier are required")
	}
	if cfg.Signer.Name() != cfg.Verifier.Name() || cfg.Signer.KeyHash() != cfg.Verifier.KeyHash() {
		return nil, fmt.Errorf("log: signing key %s+%08x does not match verifier key %s+%08x", cfg.Signer.Name(), cfg.Signer.KeyHash(), cfg.Verifier.Name(), cfg.Verifier.KeyHash())
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = DefaultCommitTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Log{
		cfg:    cfg,
		origin: cfg.Signer.Name(),
		st:     cfg.Store,
		cache:  newTileCache(256),
		logger: cfg.Logger,
		reqs:   make(chan *pending, 4096),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		// One batch is committed while the next is prepared.
		commits:   make(chan *prepared, 1),
		committed: make(chan struct{}),
		inflight:  map[store.Hash]slot{},
		syncs:     make(chan syncRequest),
	}
	l.initWitnesses()
	if err := l.reload(ctx); err != nil {
		return nil, err
	}
	if err := l.openIndex(ctx); err != nil {
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if l.witnessRequired() && !l.snap.Load().cosigned {
		// The stored note lacks the quorum's cosignatures: have it
		// cosigned now; if that fails, the next batch tries again.
		if err := l.witnessAndPublish(ctx, l.state, l.cur); err != nil {
			l.logger.Warn("serving the log-signed checkpoint until witnesses cosign one", "err", err)
		}
	}
	if cfg.Metrics != nil {
		cfg.Metrics.TreeSize.Set(float64(l.Checkpoint().Size))
	}
	if l.witnessDone != nil {
		go l.witnessLoop()
		l.kickWitnesses()
	}
	l.committedTo(l.cur, nil)
	go l.commit()
	go l.run()
	return l, nil
}

// reload reads the latest checkpoint and the tree state from the store.
func (l *Log) reload(ctx context.Context) error {
	cp, err := l.st.Latest(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return errors.New("log: the store holds no checkpoint: initialise the log first (custody init)")
	}
	if err != nil {
		return fmt.Errorf("log: reading the latest checkpoint: %w", err)
	}
	c, err := l.openCheckpoint(cp.Note)
	if err != nil {
		return fmt.Errorf("log: the stored checkpoint of size %d does not verify: %w", cp.Size, err)
	}
	if c.Size != cp.Size || c.Root != cp.Root {
		return fmt.Errorf("%w: checkpoint row of size %d root %x holds a note for size %d root %x", errCorrupt, cp.Size, cp.Root, c.Size, c.Root)
	}
	t, err := loadTree(ctx, l.st, cp)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	l.state, l.cur = t, cp
	if l.snap.Load() == nil || !l.witnessRequired() {
		// With a required quorum, a reload after a failed commit keeps the
		// cosigned checkpoint published: the next batch witnesses anew.
		l.publishStored(t, cp)
	}
	return nil
}

// publishStored publishes cp, just read from the store, as it is stored:
// marked cosigned if its note already carries the witnesses' cosignatures
// (stored before a restart), so they are not asked again.
func (l *Log) publishStored(t *treeState, cp store.Checkpoint) {
	if !l.storedCosigned(cp) {
		l.publish(t, cp)
		return
	}
	l.snap.Store(&snapshot{cp: cp, src: t.nodeSource(l.st, l.cache), cosigned: true})
	if l.cfg.Metrics != nil {
		l.cfg.Metrics.TreeSize.Set(float64(cp.Size))
	}
}

func (l *Log) openCheckpoint(signed []byte) (verify.Checkpoint, error) {
	c, _, err := verify.OpenCheckpoint(signed, l.origin, note.VerifierList(l.cfg.Verifier))
	return c, err
}

func (l *Log) publish(t *treeState, cp store.Checkpoint) {
	l.snap.Store(&snapshot{cp: cp, src: t.nodeSource(l.st, l.cache)})
	if l.cfg.Metrics != nil {
		l.cfg.Metrics.TreeSize.Set(float64(cp.Size))
	}
	l.kickWitnesses()
}

// committedTo tells Config.OnCommit that the committed tree is cp, whose
// last entries are es.
func (l *Log) committedTo(cp store.Checkpoint, es []store.Entry) {
	if l.cfg.OnCommit != nil {
		l.cfg.OnCommit(cp, es)
	}
}

// Closed reports whether the log is shutting down (Close or Shutdown has
// been called): it accepts no more events.
func (l *Log) Closed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

// Origin returns the log's origin (its key name).
func (l *Log) Origin() string { return l.origin }

// Checkpoint returns the newest published checkpoint: durable, signed and
// verified.
func (l *Log) Checkpoint() store.Checkpoint { return l.snap.Load().cp }

// Add appends one event (its Logged field is set by the log) and returns its
// receipt once the event is durably in the tree.
func (l *Log) Add(ctx context.Context, ev record.Event) (verify.Receipt, error) {
	rs, err := l.AddMany(ctx, []record.Event{ev})
	if err != nil {
		return verify.Receipt{}, err
	}
	return rs[0], nil
}

// AddMany appends events, which land in one batch in the given order (apart
// from duplicates, which keep their original index), and returns one receipt
// per event in the same order once all are durable. The events must be valid
// (record.Event.Validate); their Logged fields are ignored. It is Submit
// followed by building every receipt.
func (l *Log) AddMany(ctx context.Context, evs []record.Event) ([]verify.Receipt, error) {
	rs, err := l.Submit(ctx, evs)
	if err != nil || rs.Len() == 0 {
		return nil, err
	}
	out := make([]verify.Receipt, rs.Len())
	for i := range out {
		if out[i], err = rs.Receipt(ctx, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Submit is AddMany without the receipts: it returns once the events are
// durably in the tree and a checkpoint covering them is published, with a
// Receipts that builds each event's receipt on demand. A caller that sends
// receipts on as it builds them (the HTTP API) so holds one receipt at a
// time rather than all of them; Submit keeps nothing of evs.
//
// With Config.RequireSignatures it refuses the events (ErrRejected):
// signed events go through SubmitGroups.
func (l *Log) Submit(ctx context.Context, evs []record.Event) (*Receipts, error) {
	return l.SubmitGroups(ctx, []Group{{Events: evs}})
}

// enqueue hands p to the sequencer and waits for its events to be durable.
func (l *Log) enqueue(ctx context.Context, p *pending) (*Receipts, error) {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case l.reqs <- p:
	case <-ctx.Done():
		l.mu.RUnlock()
		return nil, ctx.Err()
	}
	l.mu.RUnlock()
	select {
	case r := <-p.done:
		if r.err != nil {
			return nil, r.err
		}
		if l.cfg.Metrics != nil {
			l.cfg.Metrics.Integration.Observe(time.Since(p.enq).Seconds())
		}
		return &Receipts{l: l, snap: r.snap, slots: r.slots}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Receipts are the receipts of one Submit, in the order of its events,
// all against the same published checkpoint. It holds each event's index
// and, for a new entry, its bytes; a duplicate's entry is read from the
// store when its receipt is built.
type Receipts struct {
	l     *Log
	snap  *snapshot
	slots []slot
}

// Len is the number of receipts: one per submitted event.
func (r *Receipts) Len() int { return len(r.slots) }

// Receipt builds the receipt of event i (0 <= i < Len). An error wraps
// ErrUnavailable when the store cannot be read.
func (r *Receipts) Receipt(ctx context.Context, i int) (verify.Receipt, error) {
	s := r.slots[i]
	data := s.data
	if data == nil {
		es, err := r.l.st.Entries(ctx, s.index, s.index+1)
		if err != nil || len(es) != 1 {
			if err != nil {
				err = fmt.Errorf("%w: reading existing entry %d: %w", ErrUnavailable, s.index, err)
			} else {
				err = fmt.Errorf("%w: existing entry %d is not in the store", ErrUnavailable, s.index)
			}
			r.l.logger.Error("building receipt", "err", err)
			return verify.Receipt{}, err
		}
		data = es[0].Data
	}
	rc, err := r.l.receipt(ctx, r.snap, s.index, data)
	if err == nil && s.att != nil {
		rc.Attestation, err = r.attestation(ctx, s)
	}
	if err != nil {
		r.l.logger.Error("building receipt", "err", err)
	}
	return rc, err
}

// Shutdown stops accepting events (Submit returns ErrClosed), commits
// every event already accepted, answers its caller, and stops the log's
// goroutines; then it ends the log's context. It does not close the store.
//
// If ctx ends first, Shutdown ends the log's context at once, so that the
// store calls in flight are cancelled (their callers get ErrUnavailable),
// and returns an error wrapping ctx's error without waiting any longer: a
// hung store cannot hold it past ctx. Calling it again waits again.
func (l *Log) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.stop)
	}
	l.mu.Unlock()
	defer l.cancel()
	for _, done := range []chan struct{}{l.done, l.witnessDone} {
		if done == nil {
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("log: shutting down: the batches in flight were not committed in time (%w); they are cancelled", ctx.Err())
		}
	}
	l.shutdownIndex(ctx)
	return nil
}

// Close is Shutdown bounded by DefaultShutdownTimeout.
func (l *Log) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	return l.Shutdown(ctx)
}

// batchContext bounds the store calls of one batch: the log's lifetime
// and Config.CommitTimeout.
func (l *Log) batchContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(l.ctx, l.cfg.CommitTimeout)
}

// storeFailed wraps a failed store call of the pipeline (what was being
// done, and the store's error) with ErrUnavailable, saying so when it ran
// out of Config.CommitTimeout.
func (l *Log) storeFailed(ctx context.Context, what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return fmt.Errorf("%w: %s: the store did not answer within the commit timeout (%s): %w", ErrUnavailable, what, l.cfg.CommitTimeout, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// run is the sequencer: it gathers requests into batches and integrates them.
func (l *Log) run() {
	defer close(l.done)
	defer func() { <-l.committed }()
	defer close(l.commits)
	for {
		var first *pending
		select {
		case first = <-l.reqs:
		case req := <-l.syncs:
			req.reply <- l.syncWithin(req.ctx)
			continue
		case <-l.stop:
			// No sender is left (Close holds the lock until closed is set):
			// drain what was queued, then stop.
			for {
				select {
				case p := <-l.reqs:
					l.integrate(l.gather(p, false))
				default:
					return
				}
			}
		}
		l.integrate(l.gather(first, true))
	}
}

// gather collects requests after first until the batch is full or MaxWait
// has passed (wait=false: only what is already queued).
func (l *Log) gather(first *pending, wait bool) []*pending {
	batch := []*pending{first}
	n := len(first.events)
	for n < l.cfg.MaxBatch {
		select {
		case p := <-l.reqs:
			batch = append(batch, p)
			n += len(p.events)
			continue
		default:
		}
		break
	}
	if !wait || l.cfg.MaxWait < 0 || n >= l.cfg.MaxBatch {
		return batch
	}
	timer := time.NewTimer(l.cfg.MaxWait)
	defer timer.Stop()
	for n < l.cfg.MaxBatch {
		select {
		case p := <-l.reqs:
			batch = append(batch, p)
			n += len(p.events)
		case <-timer.C:
			return batch
		case <-l.stop:
			return batch
		}
	}
	return batch
}

// slot is where one submitted event ended up.
type slot struct {
	index uint64
	data  []byte   // nil: an existing entry, read from the store
	att   *attSlot // the attestation covering it, if signed (attest.go)
	pos   int      // its leaf number in att's tree
}

// prepared is a batch the sequencer has sequenced, hashed and signed, on
// its way to the committer.
type prepared struct {
	batch   []*pending
	slots   [][]slot
	entries []store.Entry
	tiles   []store.Tile
	prev    store.Checkpoint
	cp      store.Checkpoint
	next    *treeState
	barrier chan struct{} // set only on a barrier: closed when reached
}

// integrate sequences one batch on top of the newest prepared state and
// hands it to the committer. It does not wait for the commit: the next batch
// is prepared while this one is written (pipelining). If a commit fails,
// the committer marks the log broken; every batch already prepared on top of
// the failed one then fails too, and the next integrate drains the pipeline
// and reloads the state from the store before going on.
func (l *Log) integrate(batch []*pending) {
	ctx, cancel := l.batchContext()
	defer cancel()
	fail := func(err error) {
		for _, p := range batch {
			p.done <- result{err: err}
		}
	}
	if l.broken.Load() || l.state == nil {
		l.drain()
		l.clearInflight()
		if err := l.reload(ctx); err != nil {
			l.state = nil
			l.logger.Error("reloading the log after a failed commit", "err", err)
			fail(l.storeFailed(ctx, "reloading after a failed commit", err))
			return
		}
		if err := l.reloadIndex(ctx, l.cur, true); err != nil {
			l.state = nil
			l.logger.Error("reloading the sample index", "err", err)
			fail(l.storeFailed(ctx, "reloading the sample index", err))
			return
		}
		l.broken.Store(false)
		// A failed commit may have reached the disk.
		l.committedTo(l.cur, nil)
	}
	l.maybeFlushIndex()

	// De-duplicate: against batches still being committed, then against
	// the store (in that order: an entry leaves the in-flight set only after
	// its commit, so it is always in one of the two), then within the batch.
	slots := make([][]slot, len(batch))
	var ask []store.Hash
	l.inflightMu.Lock()
	for i, p := range batch {
		slots[i] = make([]slot, len(p.events))
		for j, id := range p.ids {
			if s, ok := l.inflight[id]; ok {
				slots[i][j] = s
			} else {
				slots[i][j] = slot{index: noIndex}
				ask = append(ask, id)
			}
		}
		ask = l.resolveAtts(p, ask)
	}
	l.inflightMu.Unlock()
	existing, err := l.st.ByIdentity(ctx, ask)
	if err != nil {
		l.logger.Error("looking up event identities", "err", err, "events", len(ask))
		fail(l.storeFailed(ctx, fmt.Sprintf("looking up %d event identities", len(ask)), err))
		return
	}
	logged := l.cfg.Now().UTC().Truncate(time.Second)
	size := l.cur.Size
	fresh := map[store.Hash]slot{}
	var entries []store.Entry
	var leaves []store.Hash
	for i, p := range batch {
		if len(p.atts) > 0 {
			es, err := l.placeSigned(p, slots[i], existing, fresh, size+uint64(len(entries)), logged)
			p.err = err
			for _, e := range es {
				entries = append(entries, e)
				leaves = append(leaves, e.LeafHash)
			}
			continue
		}
		for j, ev := range p.events {
			if slots[i][j].index != noIndex {
				continue
			}
			id := p.ids[j]
			if idx, ok := existing[id]; ok {
				slots[i][j] = slot{index: idx}
				continue
			}
			if s, ok := fresh[id]; ok {
				slots[i][j] = s
				continue
			}
			ev.Logged = logged
			data := ev.Canonical()
			e := store.Entry{
				Index:    size + uint64(len(entries)),
				Identity: id,
				LeafHash: tiles.LeafHash(data),
				Sample:   ev.Sample,
				Data:     data,
			}
			entries = append(entries, e)
			leaves = append(leaves, e.LeafHash)
			s := slot{index: e.Index, data: data}
			fresh[id] = s
			slots[i][j] = s
		}
	}
	batch, slots = refuseFailed(batch, slots)

	pr := &prepared{batch: batch, slots: slots, entries: entries, prev: l.cur, cp: l.cur, next: l.state}
	if len(entries) > 0 {
		next, tiles := l.state.grow(leaves)
		root := next.root()
		ext, err := l.indexBatch(ctx, entries)
		if err != nil {
			l.logger.Error("indexing samples", "size", next.size, "err", err)
			fail(err)
			return
		}
		signed, err := signCheckpoint(l.cfg.Signer, next.size, root, ext...)
		if err != nil {
			l.logger.Error("signing checkpoint", "size", next.size, "err", err)
			fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
			return
		}
		// Check the new checkpoint with the auditors' parser before it
		// goes anywhere.
		if c, err := l.openCheckpoint(signed); err != nil || c.Size != next.size || c.Root != root {
			l.logger.Error("a freshly signed checkpoint does not verify", "size", next.size, "err", err)
			if err == nil {
				err = fmt.Errorf("it holds size %d root %x, want size %d root %x", c.Size, c.Root, next.size, root)
			}
			fail(fmt.Errorf("%w: new checkpoint of size %d does not verify: %w", ErrUnavailable, next.size, err))
			return
		}
		pr.tiles, pr.next = tiles, next
		pr.cp = store.Checkpoint{Size: next.size, Root: root, Note: signed}
		l.inflightMu.Lock()
		for id, s := range fresh {
			l.inflight[id] = s
		}
		l.inflightMu.Unlock()
		l.state, l.cur = next, pr.cp
	}
	l.commits <- pr
}

// noIndex marks a slot not resolved yet.
const noIndex = ^uint64(0)

// drain waits until the committer has handled every prepared batch.
func (l *Log) drain() {
	b := &prepared{barrier: make(chan struct{})}
	l.commits <- b
	<-b.barrier
}

func (l *Log) clearInflight() {
	l.inflightMu.Lock()
	clear(l.inflight)
	l.inflightMu.Unlock()
}

// commit runs in its own goroutine: it writes prepared batches in order,
// publishes each checkpoint once its batch is durable, and hands each
// submitter where its events are and the snapshot to prove them against.
func (l *Log) commit() {
	defer close(l.committed)
	for pr := range l.commits {
		if pr.barrier != nil {
			close(pr.barrier)
			continue
		}
		if len(pr.entries) > 0 || l.broken.Load() {
			if err := l.commitBatch(pr); err != nil {
				for _, p := range pr.batch {
					p.done <- result{err: err}
				}
				continue
			}
		}
		// With a required quorum, publish only cosigned checkpoints. This
		// also runs for a batch of duplicates only when the published
		// checkpoint lags the committed one (an earlier quorum failure),
		// so that a retry gets receipts against a cosigned checkpoint.
		if l.witnessRequired() {
			if s := l.snap.Load(); !s.cosigned || s.cp.Size < pr.cp.Size {
				if err := l.witnessAndPublish(l.ctx, pr.next, pr.cp); err != nil {
					for _, p := range pr.batch {
						p.done <- result{err: err}
					}
					continue
				}
			}
		}
		// Receipts, against the checkpoint just published, are built by
		// each submitter (Receipts) while the next batch is committed.
		snap := l.snap.Load()
		for i, p := range pr.batch {
			p.done <- result{slots: pr.slots[i], snap: snap}
		}
	}
}

// commitBatch writes one batch durably, within Config.CommitTimeout, and
// publishes its checkpoint.
func (l *Log) commitBatch(pr *prepared) error {
	defer func() {
		l.inflightMu.Lock()
		for _, e := range pr.entries {
			delete(l.inflight, e.Identity)
		}
		l.inflightMu.Unlock()
	}()
	if l.broken.Load() {
		// Prepared on top of a batch whose commit failed.
		return fmt.Errorf("%w: an earlier batch failed to commit", ErrUnavailable)
	}
	start := time.Now()
	ctx, cancel := l.batchContext()
	defer cancel()
	err := l.st.Append(ctx, store.Batch{Prev: &pr.prev, Entries: pr.entries, Tiles: pr.tiles, Checkpoint: pr.cp})
	if err != nil {
		// The store may or may not hold the batch (a commit can fail after
		// it reached the disk): nothing is published, and the sequencer
		// reloads its state from the store before the next batch.
		l.broken.Store(true)
		l.logger.Error("committing batch", "err", err, "size", pr.prev.Size, "entries", len(pr.entries))
		if l.cfg.Metrics != nil {
			l.cfg.Metrics.CommitErrors.Inc()
		}
		return l.storeFailed(ctx, fmt.Sprintf("committing %d entries on top of size %d", len(pr.entries), pr.prev.Size), err)
	}
	if m := l.cfg.Metrics; m != nil {
		m.Commit.Observe(time.Since(start).Seconds())
		m.BatchSize.Observe(float64(len(pr.entries)))
		m.Appended.Add(float64(len(pr.entries)))
	}
	l.committedTo(pr.cp, pr.entries)
	if !l.witnessRequired() {
		l.publish(pr.next, pr.cp) // else the committer publishes once cosigned
	}
	l.logger.Debug("batch committed", "size", pr.cp.Size, "entries", len(pr.entries), "requests", len(pr.batch), "took", time.Since(start))
	return nil
}

// receipt builds the receipt of entry index (with bytes data) against snap.
func (l *Log) receipt(ctx context.Context, snap *snapshot, index uint64, data []byte) (verify.Receipt, error) {
	path, err := l.inclusion(ctx, snap, index, snap.cp.Size)
	if err != nil {
		return verify.Receipt{}, err
	}
	lh := tiles.LeafHash(data)
	hashes := make([][32]byte, len(path))
	for i, h := range path {
		copy(hashes[i][:], h)
	}
	tp := verify.TLogProof{Index: index, Proof: hashes, Checkpoint: snap.cp.Note}
	return verify.Receipt{
		Index:      index,
		LeafHash:   lh[:],
		Entry:      data,
		Event:      data,
		Checkpoint: string(snap.cp.Note),
		Proof:      path,
		TLogProof:  string(tp.Marshal()),
	}, nil
}
