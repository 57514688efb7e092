package loadgen

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/custodylog/custody/activity"
	"github.com/custodylog/custody/record"
)

// TestPrefillSavesActivity: the prefill saves the activity aggregate with
// the counts (a server started on the prefilled log restores both and
// recounts nothing), across two prefills, and it is the aggregate of the
// log's entries: byte for byte what an Aggregate fed them gives.
func TestPrefillSavesActivity(t *testing.T) {
	ctx := context.Background()
	st, cp, snap := prefillTwice(t, 2000, 700, 600, 250)
	es, err := st.Entries(ctx, 0, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	want := activity.New()
	colls := map[[2]string]uint64{}
	for _, e := range es {
		ev, err := record.DecodeEntry(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		want.Add(e.Index, &ev)
		if ev.Action == record.Collected {
			colls[[2]string{ev.Region, ev.Location}]++
		}
	}
	got := map[[2]string]uint64{}
	for _, c := range snap.Activity.Collections() {
		got[[2]string{c.Region, c.Location}] = c.Events
	}
	if !reflect.DeepEqual(got, colls) || len(colls) != len(benchLocations) || snap.Activity.Events() != cp.Size {
		t.Errorf("saved collections %v of %d events, recounted %v of %d", got, snap.Activity.Events(), colls, cp.Size)
	}
	gotData, err1 := snap.Activity.MarshalBinary()
	wantData, err2 := want.MarshalBinary()
	if err1 != nil || err2 != nil || !bytes.Equal(gotData, wantData) {
		t.Errorf("the saved activity is not that of the log's entries (%v, %v)", err1, err2)
	}
}
