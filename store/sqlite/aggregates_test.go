package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/custodylog/custody/store"
	"github.com/custodylog/custody/store/storetest"
)

func reopenTemp(t *testing.T, old store.Store) store.Store {
	path := old.(*Store).path
	if err := old.Close(); err != nil {
		t.Fatalf("Close() error: %v", err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s) again error: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAggregates(t *testing.T) {
	storetest.RunAggregates(t, func(t *testing.T) store.Store { return openTemp(t) }, reopenTemp)
}

// TestAggregatesOldDatabase: a database made before the aggregates table
// existed has no aggregate, and gets the table at the first save.
func TestAggregatesOldDatabase(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	if _, err := s.w.ExecContext(ctx, "DROP TABLE aggregates"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LoadAggregate(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LoadAggregate(no table) error = %v, want ErrNotFound", err)
	}
	if err := s.SaveAggregate(ctx, "a", 3, []byte("x")); err != nil {
		t.Fatalf("SaveAggregate(no table) error: %v", err)
	}
	if size, data, err := s.LoadAggregate(ctx, "a"); err != nil || size != 3 || string(data) != "x" {
		t.Errorf("LoadAggregate() = %d, %q, %v; want 3, x", size, data, err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM aggregates").Scan(&n); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("aggregates has %d rows, want 1", n)
	}
}
