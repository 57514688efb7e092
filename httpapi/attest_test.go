package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/custodylog/custody/internal/sitetest"
	"github.com/custodylog/custody/log"
	"github.com/custodylog/custody/record"
	"github.com/custodylog/custody/verify"
	"golang.org/x/mod/sumdb/note"
)

// signedBody is JSON lines: evs, and after them the attestation line for
// entry (if not nil).
func signedBody(t *testing.T, evs []record.Event, entry []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, ev := range evs {
		b.Write(ev.Canonical())
		b.WriteByte('\n')
	}
	if entry != nil {
		line, err := json.Marshal(map[string]string{"attestation": string(entry)})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func postSigned(t *testing.T, h http.Handler, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestPostSigned: a body of signed events and their attestation line is
// appended; every receipt carries the attestation (checked with x/mod);
// /v1/entries shows the attestation entry; /v1/stats names the mode.
func TestPostSigned(t *testing.T) {
	w := sitetest.NewWorld(t)
	tl := newTestLog(t, log.Config{Sites: w.Set})
	h := tl.Handler(Config{Tokens: []string{testToken}})
	evs := testEvents(0, 3)
	body := append(signedBody(t, testEvents(100, 1), nil), signedBody(t, evs, sitetest.Sign(t, w.Zrh, tl.Origin(), testNow(), evs))...)
	rec := postSigned(t, h, body)
	if rec.Code != 200 {
		t.Fatalf("POST signed: %d %s", rec.Code, rec.Body)
	}
	sc := bufio.NewScanner(rec.Body)
	n := 0
	for sc.Scan() {
		var r verify.Receipt
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		checkReceipt(t, tl.vkey, r)
		if _, _, err := verify.CheckReceipt(r, tl.Origin(), note.VerifierList(tl.verifier), nil); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if r.Attestation != nil {
				t.Fatal("the unsigned event's receipt has an attestation")
			}
		} else {
			sitetest.CheckAttestation(t, w.Zrh.VKey, r, evs[n-1])
		}
		n++
	}
	if n != 4 || tl.Checkpoint().Size != 5 {
		t.Fatalf("%d receipts, size %d; want 4 receipts, 5 entries", n, tl.Checkpoint().Size)
	}
	get := func(path string) []byte {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	var e EntryJSON
	if err := json.Unmarshal(get("/v1/entries/4"), &e); err != nil {
		t.Fatal(err)
	}
	if record.KindOf(e.Entry) != record.EntryAttestation || string(e.Event) != "null" {
		t.Fatalf("entry 4: %q, event %s; want the attestation and no event", e.Entry, e.Event)
	}
	a, err := record.DecodeAttestation(e.Entry)
	if err != nil {
		t.Fatal(err)
	}
	if at := e.Attestation; at == nil || at.Site != a.Site || at.Origin != tl.Origin() || at.Count != 3 || at.Key != fmt.Sprintf("%08x", a.KeyID) ||
		!at.Time.Equal(a.Time) || string(at.Root) != string(a.Root[:]) {
		t.Fatalf("entry 4's attestation field %+v, want the entry's decoded fields %+v", e.Attestation, a)
	}
	var e0 EntryJSON
	if err := json.Unmarshal(get("/v1/entries/0"), &e0); err != nil || e0.Attestation != nil {
		t.Fatalf("entry 0 (an event) has an attestation field: %+v, %v", e0.Attestation, err)
	}
	var st struct {
		Sites string `json:"site_signatures"`
	}
	if err := json.Unmarshal(get("/v1/stats"), &st); err != nil || st.Sites != "optional" {
		t.Fatalf("stats: site_signatures %q (%v), want optional", st.Sites, err)
	}
}

// TestPostSignedRejected: tampered signed requests get 400 naming the
// event and the reason, and nothing is written.
func TestPostSignedRejected(t *testing.T) {
	w := sitetest.NewWorld(t)
	tl := newTestLog(t, log.Config{Sites: w.Set, RequireSignatures: true})
	h := tl.Handler(Config{Tokens: []string{testToken}})
	origin := tl.Origin()
	evs := testEvents(0, 3)
	good := sitetest.Sign(t, w.Zrh, origin, testNow(), evs)
	edited := append([]record.Event(nil), evs...)
	edited[1].Actor = "someone-else"
	cases := []struct {
		name, body, want string
	}{
		{"edited after signing", string(signedBody(t, edited, good)), "bad-site-signature"},
		{"replayed with another batch", string(signedBody(t, testEvents(50, 3), good)), "bad-site-signature"},
		{"moved out of its attestation", string(signedBody(t, []record.Event{evs[0], testEvent(60), evs[2]}, good)), "bad-site-signature"},
		{"attestation reaching over another", string(signedBody(t, evs, good)) + string(signedBody(t, testEvents(70, 1), good)), "covers 3 events, but only 1"},
		{"key outside its window", string(signedBody(t, evs, sitetest.Sign(t, w.ZrhOld, origin, testNow(), evs))), "site-key-not-valid"},
		{"another site's location", string(signedBody(t, evs, sitetest.Sign(t, w.Mow, origin, testNow(), evs))), `event 0 (sample "s-000000"): site-not-allowed`},
		{"unsigned in required mode", string(signedBody(t, evs, nil)), `event 0 (sample "s-000000"): unsigned`},
		{"malformed attestation line", string(signedBody(t, evs, nil)) + `{"attestation": 5}` + "\n", "not an attestation line"},
		{"attestation that does not parse", string(signedBody(t, evs, []byte("custody-attestation/v1\n"))), "bad-site-signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := postSigned(t, h, []byte(tc.body))
			var e struct{ Error string }
			json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != 400 || !strings.Contains(e.Error, tc.want) {
				t.Fatalf("got %d %s, want 400 with %q", rec.Code, rec.Body, tc.want)
			}
			if tl.Checkpoint().Size != 0 {
				t.Fatalf("log has %d entries", tl.Checkpoint().Size)
			}
		})
	}
	// A body larger than the one-shot parse is read line by line: same
	// rules.
	big := testEvents(1000, 900)
	var b bytes.Buffer
	for i := 0; i < 900; i += 300 {
		b.Write(signedBody(t, big[i:i+300], sitetest.Sign(t, w.Zrh, origin, testNow(), big[i:i+300])))
	}
	if b.Len() <= peekBody {
		t.Fatalf("body of %d bytes is not streamed", b.Len())
	}
	body := b.Bytes()
	tampered := bytes.Replace(body, []byte("s-001500"), []byte("s-901500"), 1)
	if rec := postSigned(t, h, tampered); rec.Code != 400 || !strings.Contains(rec.Body.String(), "bad-site-signature") {
		t.Fatalf("streamed tampered body: %d %s", rec.Code, rec.Body)
	}
	if tl.Checkpoint().Size != 0 {
		t.Fatalf("log has %d entries", tl.Checkpoint().Size)
	}
	if rec := postSigned(t, h, body); rec.Code != 200 {
		t.Fatalf("streamed signed body: %d %s", rec.Code, rec.Body)
	}
	if tl.Checkpoint().Size != 903 {
		t.Fatalf("log has %d entries, want 903", tl.Checkpoint().Size)
	}
	var st struct {
		Sites string `json:"site_signatures"`
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/stats", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Sites != "required" {
		t.Fatalf("stats: site_signatures %q (%v), want required", st.Sites, err)
	}
}
