package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custodylog/custody/internal/fuzzseeds"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
)

func TestCheckReceiptFile(t *testing.T) {
	ev := record.Event{Sample: "s9", Action: "analysed", Location: "ch-zrh-1", Region: "EU", Actor: "t",
		Time: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Logged: time.Date(2026, 11, 1, 12, 0, 9, 0, time.UTC)}
	entry := ev.Canonical()
	r, origin, tlp, vs := oneEntryReceipt(t, entry)
	r.Event = entry // as the log's receipts carry it
	line, _ := json.Marshal(r)
	bad := r
	bad.Entry = bytes.Replace(entry, []byte(`"s9"`), []byte(`"s8"`), 1) // an entry the proof does not prove
	bad.Event = bad.Entry
	badLine, _ := json.Marshal(bad)
	entryOf := func(b []byte) func() ([]byte, error) { return func() ([]byte, error) { return b, nil } }
	want := ValidReceipt{Index: 0, Size: 1, Sample: "s9", Action: "analysed"}
	for _, tc := range []struct {
		name    string
		data    string
		entry   func() ([]byte, error)
		valid   int
		problem ReceiptFileProblem // 0: valid, or a failure of the log
		failed  bool               // a *verify.VerificationError
	}{
		{"receipts with blank lines", "\n" + string(line) + "\n\n" + string(line) + "\n", nil, 2, 0, false},
		{"a tlog-proof with its entry and a final newline", string(tlp), entryOf(append(entry, '\n')), 1, 0, false},
		{"a tlog-proof without its entry", string(tlp), nil, 0, NoEntry, false},
		{"a tlog-proof whose entry cannot be read", string(tlp), func() ([]byte, error) { return nil, errors.New("no such file") }, 0, EntryUnread, false},
		{"a tlog-proof of another entry", string(tlp), entryOf([]byte(`{"other":1}`)), 0, 0, true},
		{"a line that is not JSON", string(line) + "\nnot json\n", nil, 0, NotJSON, false},
		{"a JSON line that is not a receipt", `{"index":0}`, nil, 0, NotReceipt, false},
		{"no receipt", "\n\n", nil, 0, NoReceipt, false},
		{"a line longer than a MiB", strings.Repeat("x", 1<<20+1), nil, 0, ReadFailed, false},
		{"a receipt the log did not sign for this entry", string(line) + "\n" + string(badLine) + "\n", nil, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CheckReceiptFile("r.jsonl", []byte(tc.data), tc.entry, origin, vs, nil)
			var fe *ReceiptFileError
			_, failed := verify.IsVerificationError(err)
			switch {
			case tc.problem != 0 && (!errors.As(err, &fe) || fe.Problem != tc.problem):
				t.Fatalf("CheckReceiptFile: %v, want a ReceiptFileError of problem %d", err, tc.problem)
			case tc.failed != failed || tc.failed && errors.As(err, &fe):
				t.Fatalf("CheckReceiptFile: %v; want a verification failure: %v", err, tc.failed)
			case tc.problem == 0 && !tc.failed && err != nil:
				t.Fatalf("CheckReceiptFile: %v", err)
			case len(got) != tc.valid:
				t.Fatalf("CheckReceiptFile returned %d receipts, want %d", len(got), tc.valid)
			}
			for _, g := range got {
				if g != want {
					t.Errorf("receipt %+v, want %+v", g, want)
				}
			}
		})
	}
}

// FuzzCheckReceiptFile: whatever the file, CheckReceiptFile does not panic,
// returns receipts only without an error, and fails a file it accepts only
// as input (a *ReceiptFileError) or as the log's failure, never both.
func FuzzCheckReceiptFile(f *testing.F) {
	ev := record.Event{Sample: "s1", Action: "stored", Location: "ch-zrh-1", Region: "EU", Actor: "t",
		Time: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), Logged: time.Date(2026, 11, 1, 12, 0, 9, 0, time.UTC)}
	entry := ev.Canonical()
	r, origin, tlp, vs := oneEntryReceipt(f, entry)
	r.Event = entry
	line, _ := json.Marshal(r)
	f.Add(line, entry)
	f.Add(tlp, entry)
	f.Fuzz(func(t *testing.T, data, entry []byte) {
		got, err := CheckReceiptFile("f", data, func() ([]byte, error) { return entry, nil }, origin, vs, nil)
		var fe *ReceiptFileError
		_, failed := verify.IsVerificationError(err)
		switch {
		case err == nil && len(got) == 0:
			t.Fatal("no error and no receipt")
		case err != nil && got != nil:
			t.Fatalf("receipts returned with %v", err)
		case errors.As(err, &fe) && failed:
			t.Fatalf("both an input error and a failure of the log: %v", err)
		}
	})
}

func TestReceiptFileFuzzSeeds(t *testing.T) {
	_, origin, _, vs := oneEntryReceipt(t, []byte("{}"))
	fuzzseeds.Check(t, map[string]func(args []any) error{
		"FuzzCheckReceiptFile": func(a []any) error {
			entry := a[1].([]byte)
			_, err := CheckReceiptFile("seed", a[0].([]byte), func() ([]byte, error) { return entry, nil }, origin, vs, nil)
			return err
		},
	})
}
