package server

import (
	"context"
	"errors"
	"testing"

	"github.com/custodylog/custody/loadgen"
)

func TestPrefill(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Init(ctx, dir, "prefilldir.test/log", ""); err != nil {
		t.Fatal(err)
	}
	var last uint64
	res, err := Prefill(ctx, dir, "", 300, loadgen.PrefillOptions{Batch: 128, Progress: func(n uint64) { last = n }})
	if err != nil || res.From != 0 || res.Size != 300 || last != 300 {
		t.Fatalf("Prefill = %+v, %v (progress %d); want 0 -> 300", res, err, last)
	}
	if res, err = Prefill(ctx, dir, "", 10, loadgen.PrefillOptions{}); err != nil || res.From != 300 || res.Size != 310 {
		t.Fatalf("second Prefill = %+v, %v; want 300 -> 310", res, err)
	}
	// A log someone holds (a server) is refused.
	release, err := HoldLog(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	_, err = Prefill(ctx, dir, "", 10, loadgen.PrefillOptions{})
	if se := (*Error)(nil); !errors.As(err, &se) || se.Kind != KindHold || !errors.Is(err, ErrLocked) {
		t.Fatalf("Prefill of a held log: %v, want KindHold wrapping ErrLocked", err)
	}
	// A directory without a log has no key.
	_, err = Prefill(ctx, t.TempDir(), "", 10, loadgen.PrefillOptions{})
	if se := (*Error)(nil); !errors.As(err, &se) || se.Kind != KindSigner {
		t.Fatalf("Prefill without a log: %v, want KindSigner", err)
	}
}
