package audit_test

import (
	"context"
	"fmt"
	"os"

	"github.com/custodylog/custody/audit"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// An audit reads every entry of the log through a verify.Client, checks
// every event against the routing policy, and recomputes the root from
// the entries. Keep the returned state (audit.WriteState) to continue from
// it next time: the next run then also proves the log only grew.
func ExampleAudit() {
	policy, err := audit.LoadPolicy("../testdata/policy.yaml")
	if err != nil {
		panic(err)
	}
	vkey, err := verify.LoadVerifierKey("../testdata/example/log.pub")
	if err != nil {
		panic(err)
	}
	v, err := verify.NewVerifier(vkey)
	if err != nil {
		panic(err)
	}
	c := verify.NewClient(verify.NewDirSource("../testdata/example/log"), v.Name(), note.VerifierList(v), nil)
	rep, state, err := audit.Audit(context.Background(), c, audit.AuditOptions{Policy: policy})
	if ve, ok := verify.IsVerificationError(err); ok {
		fmt.Println("the log failed verification:", ve.Evidence.What)
		return
	}
	if err != nil {
		panic(err) // could not read the log
	}
	audit.WriteReport(os.Stdout, rep)
	for _, f := range rep.Findings {
		if f.Kind == audit.KindReroute {
			fmt.Println("reroute of", f.Sample, "at entry", f.Index)
		}
	}
	fmt.Println("state: audited", state.Size, "entries")
	// Output:
	// log example.com/custody-example: 6 entries verified (root qIDezHUinu+Yht0pczl62lT08IEJFMRsV+NxXdq2ggY=)
	// sample index: not checked (the checkpoint has no custody-sample-index line)
	//
	// REGION     ch-zrh-1   de-fra-1   ru-mow-1   us-ash-1      TOTAL
	// EU                -          2          1          -          3
	// US                1          -          -          2          3
	//
	// 3 findings:
	// INDEX    SAMPLE               KIND              DETAIL
	// 2        smp-eu-1111          reroute           transferred to ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)
	// 3        smp-eu-1111          reroute           analysed at ru-mow-1 (RU), not allowed for region EU (allowed: de-fra-1, ch-zrh-1)
	// 5        smp-us-2222          continuity        analysed at ch-zrh-1, where the sample is not present (present at us-ash-1)
	// reroute of smp-eu-1111 at entry 2
	// reroute of smp-eu-1111 at entry 3
	// state: audited 6 entries
}
