package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/custodylog/custody/log"
)

// TestForwardWrites checks a server that does not hold the lease forwards
// checked writes to the one that does, and answers 503 when none does.
func TestForwardWrites(t *testing.T) {
	a := newTestLog(t, log.Config{Shared: true})
	seq := httptest.NewServer(a.Handler(Config{Tokens: []string{testToken}}))
	defer seq.Close()
	b, _ := openPeer(t, a)
	leader := seq.URL
	fwd := httptest.NewServer(New(b, Config{Now: testNow, Tokens: []string{testToken}, Leader: func() (string, bool) { return leader, false }}))
	defer fwd.Close()

	code, body := post(t, fwd.URL, testToken, eventLines(0, 4))
	if code != http.StatusOK {
		t.Fatalf("forwarded POST = %d %s", code, body)
	}
	rs, err := decodeReceipts(body)
	if err != nil || len(rs) != 4 {
		t.Fatalf("forwarded receipts: %v (%d)", err, len(rs))
	}
	checkReceipt(t, a.vkey, rs[3])
	if a.Checkpoint().Size != 4 {
		t.Fatalf("the sequencer has %d entries, want the 4 forwarded", a.Checkpoint().Size)
	}
	if b.Checkpoint().Size != 0 {
		t.Fatal("the follower appended itself")
	}
	// A bad token is refused before forwarding.
	if code, _ := post(t, fwd.URL, "wrong-token-0123456789", eventLines(4, 1)); code != http.StatusUnauthorized {
		t.Errorf("bad token through the follower = %d, want 401", code)
	}
	// No leader: 503 with Retry-After.
	leader = ""
	if code, body := post(t, fwd.URL, testToken, eventLines(4, 1)); code != http.StatusServiceUnavailable {
		t.Errorf("no leader: %d %s, want 503", code, body)
	}
	if a.Checkpoint().Size != 4 {
		t.Error("a write without a leader changed the log")
	}
}
