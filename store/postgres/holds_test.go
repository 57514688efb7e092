package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/custodylog/custody/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestHoldsLog checks that HoldsLog tells a log from an empty schema and a
// missing one, refuses a bad DSN and an unreachable server, and never
// creates anything: the empty schema stays empty.
func TestHoldsLog(t *testing.T) {
	ctx := context.Background()
	withLog := pgtest.DSN(t)
	openDSN(t, withLog).Close()
	empty := pgtest.DSN(t)
	missing, err := pgtest.WithSearchPath(pgtest.Server(), "custody_test_no_such_schema")
	if err != nil {
		t.Fatal(err)
	}

	if err := HoldsLog(ctx, withLog); err != nil {
		t.Errorf("HoldsLog(a schema with a log) = %v, want nil", err)
	}
	var nl *NoLogError
	if err := HoldsLog(ctx, empty); !errors.As(err, &nl) || nl.Schema == "" {
		t.Errorf("HoldsLog(an empty schema) = %v, want a *NoLogError naming the schema", err)
	}
	if err := HoldsLog(ctx, missing); !errors.As(err, &nl) || nl.Schema != "" {
		t.Errorf("HoldsLog(a missing schema) = %v, want a *NoLogError without a schema", err)
	}
	if err := HoldsLog(ctx, "postgres://x@[::1"); !errors.Is(err, ErrBadDSN) {
		t.Errorf("HoldsLog(a bad DSN) = %v, want an error wrapping ErrBadDSN", err)
	}
	err = HoldsLog(ctx, "postgres://nobody@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if err == nil || errors.As(err, &nl) || errors.Is(err, ErrBadDSN) {
		t.Errorf("HoldsLog(an unreachable server) = %v, want a connection error", err)
	}

	// Nothing was created in the empty schema.
	conn, err := pgx.Connect(ctx, empty)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()").Scan(&n); err != nil || n != 0 {
		t.Errorf("the empty schema has %d tables after HoldsLog (%v), want 0", n, err)
	}
}
