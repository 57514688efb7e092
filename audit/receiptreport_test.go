package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/record"
)

// TestVerifyReceiptFile: the JSON form is byte for byte the object custody
// verify receipt printed before the report had a type (sites only with a
// policy, null for a tlog-proof); an unsigned event at a site's location
// is counted bad and shown as such in the text; a receipt that fails is
// CheckReceiptFile's error.
func TestVerifyReceiptFile(t *testing.T) {
	ev := record.Event{Sample: "s9", Action: "analysed", Location: "ch-zrh-1", Region: "EU", Actor: "t",
		Time: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Logged: time.Date(2026, 11, 1, 12, 0, 9, 0, time.UTC)}
	entry := ev.Canonical()
	r, origin, tlp, vs := oneEntryReceipt(t, entry)
	r.Event = entry
	line, _ := json.Marshal(r)
	b, err := os.ReadFile(filepath.Join("..", "testdata", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, append(b, sitetest.NewWorld(t).PolicySites()...), 0o600); err != nil {
		t.Fatal(err)
	}
	indent := func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	entryOf := func() ([]byte, error) { return entry, nil }
	for _, tc := range []struct {
		name, data, policy string
		entry              func() ([]byte, error)
		bad                int
		text               string
	}{
		{"no policy", string(line) + "\n", "", nil, 0, "valid: entry 0 (s9 analysed) is in example.com/audit-receipt at size 1\n"},
		{"unsigned at a site", string(line) + "\n", policy, nil, 1, "\nsite: entry 0: "},
		{"tlog-proof with a policy", string(tlp), policy, entryOf, 0, "valid: entry 0 (s9 analysed)"},
	} {
		rep, err := VerifyReceiptFile("r", []byte(tc.data), tc.entry, origin, vs, nil, tc.policy)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		old := map[string]any{"valid": true, "origin": origin, "receipts": rep.Receipts}
		if tc.policy != "" {
			old["sites"] = *rep.Sites
		}
		if got, want := indent(rep), indent(old); got != want {
			t.Errorf("%s: JSON\n%s\nwant\n%s", tc.name, got, want)
		}
		var text bytes.Buffer
		rep.WriteText(&text)
		if rep.Bad != tc.bad || !strings.Contains(text.String(), tc.text) {
			t.Errorf("%s: %d bad, text %q; want %d and %q", tc.name, rep.Bad, text.String(), tc.bad, tc.text)
		}
	}
	if _, err := VerifyReceiptFile("r", tlp, nil, origin, vs, nil, ""); err == nil {
		t.Error("a tlog-proof without its entry verified")
	}
}
