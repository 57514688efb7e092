package fsck

import (
	"strings"
	"testing"
)

func TestWriteText(t *testing.T) {
	r := &Report{Entries: 7, Tiles: 2, Checkpoints: 3, Problems: []Problem{}}
	r.Add(KindStore, "database", "file is %s", "damaged")
	var b strings.Builder
	r.WriteText(&b)
	want := "checked 7 entries, 2 tiles, 3 checkpoints: 1 problems\n" + string(KindStore) + " database: file is damaged\n"
	if b.String() != want {
		t.Fatalf("WriteText:\n%s\nwant:\n%s", b.String(), want)
	}
}
