package loadgen

import (
	"context"
	"errors"
	"testing"

	"github.com/custodylog/custody/server"
)

func TestPrefillDir(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := server.Init(ctx, dir, "prefilldir.test/log", ""); err != nil {
		t.Fatal(err)
	}
	var last uint64
	res, err := PrefillDir(ctx, dir, "", 300, PrefillOptions{Batch: 128, Progress: func(n uint64) { last = n }})
	if err != nil || res.From != 0 || res.Size != 300 || last != 300 {
		t.Fatalf("PrefillDir = %+v, %v (progress %d); want 0 -> 300", res, err, last)
	}
	if res, err = PrefillDir(ctx, dir, "", 10, PrefillOptions{}); err != nil || res.From != 300 || res.Size != 310 {
		t.Fatalf("second PrefillDir = %+v, %v; want 300 -> 310", res, err)
	}
	// A log someone holds (a server) is refused.
	release, err := server.HoldLog(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = PrefillDir(ctx, dir, "", 10, PrefillOptions{})
	if se := (*server.Error)(nil); !errors.As(err, &se) || se.Kind != server.KindHold || !errors.Is(err, server.ErrLocked) {
		t.Fatalf("PrefillDir of a held log: %v, want KindHold wrapping server.ErrLocked", err)
	}
	// A directory without a log has no key.
	_, err = PrefillDir(ctx, t.TempDir(), "", 10, PrefillOptions{})
	if se := (*server.Error)(nil); !errors.As(err, &se) || se.Kind != server.KindSigner {
		t.Fatalf("PrefillDir without a log: %v, want KindSigner", err)
	}
}
