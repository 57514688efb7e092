// Package audit is what an auditor runs over a custody log: it reads every
// entry through a verify.Client (which authenticates them against the
// signed checkpoint), decodes each as a custody event, recomputes the tree
// root from the entries, and evaluates every event against a routing
// policy.
//
//   - [Policy] is the auditor's routing policy (YAML, see [ParsePolicy]):
//     the data centres, where each customer region's samples may be
//     handled, and how late an event may be logged.
//   - [Engine] evaluates events in index order and reports a [Finding] of a
//     typed [Kind] for each problem (reroute, unknown location or region,
//     broken custody, region change, late logging). Its state can be saved
//     and restored.
//   - [Audit] runs a whole audit, resumable from an [AuditState] kept
//     between runs ([ReadState], [WriteState]); [WriteReport] prints its
//     [AuditReport] for people.
//   - [Webhook] delivers the events of `custody monitor` in the background.
//
// The formats, the log client, receipts and witness trust policies are in
// package verify, which knows nothing of events; audit adds the events
// (package record) and the policy. Like verify, audit uses no cgo, no
// database and no command-line framework (TestDependencies).
package audit
