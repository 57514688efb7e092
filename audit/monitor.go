package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/verify"
)

// Auditor runs audits of one log that continue from a state directory, as
// `custody audit` and every round of `custody monitor` do.
type Auditor struct {
	// Client reads and authenticates the log.
	Client *verify.Client
	// Policy is the routing policy every event is checked against.
	Policy *Policy
	// StateDir holds the state between runs (ReadState, WriteState); ""
	// audits without state: every run trusts the current checkpoint on
	// first use and nothing is written.
	StateDir string
	// Full re-reads and re-checks every entry (AuditOptions.Full).
	Full bool
	// Memory is the policy engine's memory budget (AuditOptions.Memory);
	// it spills to StateDir when there is one, else to os.TempDir().
	Memory int64
	// Progress, if set, is called now and then with entries done and total.
	Progress func(done, total uint64)
	// RequireSignatures: every unsigned event is a finding
	// (AuditOptions.RequireSignatures).
	RequireSignatures bool
}

// StateError is Run's error when the state directory cannot be read or
// written: a problem of the auditor's disk, not a verdict on the log.
// Its text is Err's.
type StateError struct {
	Dir string
	// Write is false when reading the state failed, true when writing it.
	Write bool
	Err   error
}

func (e *StateError) Error() string { return e.Err.Error() }
func (e *StateError) Unwrap() error { return e.Err }

// Hint says what to do about the error, in the words of custody audit's
// flags.
func (e *StateError) Hint() string {
	if e.Write {
		return "check that --state is writable"
	}
	return "move the state directory away to start over (the log is then trusted on first use again)"
}

// ExitCode is custody's exit code for the error: 3, a disk error.
func (e *StateError) ExitCode() int { return 3 }

// Run audits the log once: it reads the state in StateDir (if set), runs
// Audit from it and, only if the audit succeeded, replaces the state with
// the new one and writes the site evidence (WriteSiteEvidence) there. Its errors are a *StateError (reading, or "writing audit
// state: …"), or Audit's: a *verify.VerificationError when the log failed
// verification, an error wrapping ErrStateOtherKey, or a failure to read
// the log.
func (a *Auditor) Run(ctx context.Context) (*AuditReport, error) {
	opts := AuditOptions{Policy: a.Policy, Full: a.Full, Progress: a.Progress, IndexDir: a.StateDir, RequireSignatures: a.RequireSignatures,
		Memory: a.Memory, SpillDir: a.StateDir, NoState: a.StateDir == "", StateDir: a.StateDir}
	if a.StateDir != "" {
		st, err := ReadState(a.StateDir)
		if err != nil {
			return nil, &StateError{Dir: a.StateDir, Err: err}
		}
		opts.State = st
	}
	rep, next, err := Audit(ctx, a.Client, opts)
	if err != nil {
		return nil, err
	}
	if a.StateDir != "" {
		if err := WriteState(a.StateDir, next); err != nil {
			return nil, &StateError{Dir: a.StateDir, Write: true, Err: fmt.Errorf("writing audit state: %w", err)}
		}
		if _, err := WriteSiteEvidence(a.StateDir, rep.SiteEvidence); err != nil {
			return nil, &StateError{Dir: a.StateDir, Write: true, Err: err}
		}
	}
	return rep, nil
}

// MonitorEvent is one thing Monitor reports: a finding no earlier round
// reported, or a failure unlike the previous round's.
type MonitorEvent struct {
	// Time is when the round ended.
	Time time.Time
	// Finding is set for a new finding, Origin and Size then being the
	// audited checkpoint's.
	Finding *Finding
	// Err is set for a failure (of the audit, or of verification: then
	// Evidence is set, and Origin and Size are the evidence's).
	Err      error
	Evidence *verify.Evidence
	Origin   string
	Size     uint64
}

// Kind is "finding" or "failure".
func (e MonitorEvent) Kind() string {
	if e.Finding != nil {
		return "finding"
	}
	return "failure"
}

// MarshalJSON encodes e as the JSON object `custody monitor` prints and
// posts: {"kind", "time" (RFC 3339, UTC, seconds), then "origin", "size"
// and "finding" for a finding, or "error" (terminal control characters
// escaped) and, with evidence, "origin", "size" and "evidence" for a
// failure}, keys in sorted order.
func (e MonitorEvent) MarshalJSON() ([]byte, error) {
	m := map[string]any{"kind": e.Kind(), "time": e.Time.UTC().Format(time.RFC3339)}
	switch {
	case e.Finding != nil:
		m["origin"], m["size"], m["finding"] = e.Origin, e.Size, *e.Finding
	case e.Err != nil:
		m["error"] = termtext.Clean(e.Err.Error())
		if e.Evidence != nil {
			m["origin"], m["size"], m["evidence"] = e.Origin, e.Size, *e.Evidence
		}
	}
	return json.Marshal(m)
}

// String is e as one line for people: "TIME finding: …" or "TIME failure:
// …", terminal control characters escaped.
func (e MonitorEvent) String() string {
	what := ""
	if e.Finding != nil {
		what = e.Finding.String()
	} else if e.Err != nil {
		what = e.Err.Error()
	}
	return fmt.Sprintf("%s %s: %s", e.Time.UTC().Format(time.RFC3339), e.Kind(), termtext.Clean(what))
}

// MonitorConfig configures Monitor.
type MonitorConfig struct {
	// Every is the time between the end of a round and the next.
	Every time.Duration
	// Round runs one audit (usually an Auditor's Run with a StateDir, so
	// that each round's AuditReport.New holds only what is new).
	Round func(ctx context.Context) (*AuditReport, error)
	// Report is called, in order, with each new finding and each failure
	// whose text differs from the previous round's (a failure repeated
	// round after round is reported once, until a round succeeds).
	Report func(MonitorEvent)
	// Webhook, if set, is sent each reported event (its MarshalJSON), and
	// its round is ended (Webhook.EndRound) after each round.
	Webhook *Webhook
	// EndRound, if set, is called after each round (after the webhook's).
	EndRound func()
}

// Monitor runs cfg.Round, then again every cfg.Every, reporting what is new,
// until ctx is done; it returns then, without reporting a round that ctx
// interrupted.
func Monitor(ctx context.Context, cfg MonitorConfig) {
	lastFailure := ""
	report := func(ev MonitorEvent) {
		cfg.Report(ev)
		if cfg.Webhook != nil {
			b, _ := json.Marshal(ev)
			cfg.Webhook.Add(b)
		}
	}
	for {
		rep, err := cfg.Round(ctx)
		now := time.Now()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if msg := err.Error(); msg != lastFailure {
				lastFailure = msg
				ev := MonitorEvent{Time: now, Err: err}
				if ve, ok := verify.IsVerificationError(err); ok {
					ev.Evidence, ev.Origin, ev.Size = &ve.Evidence, ve.Evidence.Origin, ve.Evidence.NewSize
				}
				report(ev)
			}
		default:
			lastFailure = ""
			for i := range rep.New {
				report(MonitorEvent{Time: now, Finding: &rep.New[i], Origin: rep.Origin, Size: rep.Size})
			}
		}
		if cfg.Webhook != nil {
			cfg.Webhook.EndRound()
		}
		if cfg.EndRound != nil {
			cfg.EndRound()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(cfg.Every):
		}
	}
}
