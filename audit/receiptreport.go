package audit

import (
	"fmt"
	"io"

	"github.com/custodylog/custody/internal/termtext"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// ReceiptFileReport is what `custody verify receipt` reports on a
// receipts file that verified. Its JSON form is what it prints with
// --json (the fields in this order: origin, receipts, sites, valid).
type ReceiptFileReport struct {
	Origin   string         `json:"origin"`
	Receipts []ValidReceipt `json:"receipts"`
	// Sites are the receipts' site checks (CheckReceiptFileSites) when a
	// policy was given, else nil (and absent from the JSON form).
	Sites *[]ReceiptSite `json:"sites,omitempty"`
	// Valid is true: the receipts verified (the site checks may still
	// have failed; see Bad).
	Valid bool `json:"valid"`
	// Bad counts the receipts whose site check failed.
	Bad int `json:"-"`
}

// VerifyReceiptFile checks the receipts in data with CheckReceiptFile and
// returns its errors as they are; then, if policyFile is not "", checks
// their site signatures against its sites section (LoadSiteSetFile,
// CheckReceiptFileSites).
func VerifyReceiptFile(name string, data []byte, entry func() ([]byte, error), origin string, vs note.Verifiers, tp *verify.TrustPolicy, policyFile string) (*ReceiptFileReport, error) {
	results, err := CheckReceiptFile(name, data, entry, origin, vs, tp)
	if err != nil {
		return nil, err
	}
	set, err := LoadSiteSetFile(policyFile)
	if err != nil {
		return nil, err
	}
	rep := &ReceiptFileReport{Origin: origin, Receipts: results, Valid: true}
	if set != nil {
		sites, bad := CheckReceiptFileSites(data, origin, set)
		rep.Sites, rep.Bad = &sites, bad
	}
	return rep, nil
}

// WriteText writes the report as `custody verify receipt` prints it: a
// line per receipt, "valid: entry I (SAMPLE ACTION) is in ORIGIN at size
// N", then the site checks (WriteReceiptSites). Text from the receipts is
// written with terminal control characters escaped.
func (r *ReceiptFileReport) WriteText(w io.Writer) {
	for _, v := range r.Receipts {
		fmt.Fprintf(w, "valid: entry %d (%s %s) is in %s at size %d\n", v.Index, termtext.Clean(v.Sample), termtext.Clean(v.Action), termtext.Clean(r.Origin), v.Size)
	}
	if r.Sites != nil {
		WriteReceiptSites(w, *r.Sites)
	}
}
