package dashboard

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
)

// followEvery is how often the background audit looks for new entries.
const followEvery = 200 * time.Millisecond

// auditPage is how many entries the background audit reads at once.
const auditPage = 4096

// auditor is the dashboard's built-in audit: the same policy engine as
// `custody audit` (audit.Engine), fed the log's published entries in index
// order by one goroutine. It reads the server's own store, so it checks the
// policy and custody chains, not the log's integrity (that is what an
// independent `custody audit` is for).
type auditor struct {
	eng   *audit.Engine // owned by follow
	sites *siteCheck    // owned by follow; nil without sites (sites.go)

	mu      sync.RWMutex
	next    uint64            // entries [0, next) are audited
	total   uint64            // findings reported
	byKind  map[string]uint64 // findings per kind
	recent  []audit.Finding   // the newest findings, oldest first
	keep    int
	failure string // the last error, cleared by progress
}

func newAuditor(p *audit.Policy, keep int, origin string) *auditor {
	return &auditor{eng: audit.NewEngine(p), sites: newSiteCheck(p, origin), byKind: map[string]uint64{}, keep: keep}
}

// follow audits the log up to its published size, then keeps up with it,
// until ctx is done.
func (a *auditor) follow(ctx context.Context, l *log.Log, logger *slog.Logger) {
	t := time.NewTicker(followEvery)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			n, err := a.step(ctx, l)
			if err != nil {
				if ctx.Err() == nil {
					logger.Error("dashboard audit", "err", err)
					a.mu.Lock()
					a.failure = err.Error()
					a.mu.Unlock()
				}
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step audits up to auditPage entries and reports how many it audited.
func (a *auditor) step(ctx context.Context, l *log.Log) (int, error) {
	start := a.eng.Next()
	size := l.Checkpoint().Size
	if start >= size {
		return 0, nil
	}
	es, err := l.Entries(ctx, start, min(start+auditPage, size))
	if err != nil {
		return 0, err
	}
	var found []audit.Finding
	for _, e := range es {
		if e.Index != a.eng.Next() {
			break // the log returned fewer entries; the next step resumes
		}
		if record.KindOf(e.Data) == record.EntryAttestation {
			a.eng.Skip(e.Index + 1)
			found = append(found, a.sites.entry(e, nil)...)
			continue
		}
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			return 0, err
		}
		found = append(found, a.eng.Add(e.Index, ev)...)
		found = append(found, a.sites.entry(e, &ev)...)
	}
	if a.eng.Next() == size {
		found = append(found, a.sites.settle()...)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next = a.eng.Next()
	a.failure = ""
	for _, f := range found {
		a.byKind[string(f.Kind)]++
		a.total++
	}
	a.recent = append(a.recent, found...)
	if over := len(a.recent) - a.keep; over > 0 {
		a.recent = append(a.recent[:0], a.recent[over:]...)
	}
	return len(es), nil
}

// kindCount is one row of the findings summary.
type kindCount struct {
	Kind  string
	Count uint64
}

// findingsView is the findings panel's data.
type findingsView struct {
	Audited  uint64
	Size     uint64
	Complete bool
	Total    uint64
	ByKind   []kindCount
	Recent   []audit.Finding // newest first
	Kept     int
	Failure  string
}

// progress is what the findings panel depends on, cheaply: entries
// audited, findings reported, and the last error.
func (a *auditor) progress() (next, total uint64, failure string) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.next, a.total, a.failure
}

func (a *auditor) view(size uint64) *findingsView {
	a.mu.RLock()
	defer a.mu.RUnlock()
	v := &findingsView{Audited: a.next, Size: size, Complete: a.next >= size, Total: a.total, Kept: a.keep, Failure: a.failure}
	for k, n := range a.byKind {
		v.ByKind = append(v.ByKind, kindCount{k, n})
	}
	sort.Slice(v.ByKind, func(i, j int) bool { return v.ByKind[i].Kind < v.ByKind[j].Kind })
	v.Recent = make([]audit.Finding, len(a.recent))
	for i, f := range a.recent {
		v.Recent[len(a.recent)-1-i] = f
	}
	return v
}
