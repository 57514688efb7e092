package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrBadDSN is wrapped by the error of HoldsLog for a DSN that does not
// parse.
var ErrBadDSN = errors.New("not a PostgreSQL DSN")

// NoLogError is the error of HoldsLog for a database that holds no custody
// log where the DSN points.
type NoLogError struct {
	// Name names the database (as Store messages do, without a password).
	Name string
	// Schema is the first schema of the search_path, or "" if no schema of
	// the search_path exists.
	Schema string
}

func (e *NoLogError) Error() string {
	if e.Schema == "" {
		return fmt.Sprintf("postgres: %s: no schema of its search_path exists, so it holds no log", e.Name)
	}
	return fmt.Sprintf("postgres: %s holds no custody log (schema %s has no schema_version table)", e.Name, e.Schema)
}

// HoldsLog checks, without writing anything, that the PostgreSQL database
// of dsn holds a custody log in the first schema of its search_path.
// (Open, by contrast, creates the schema where there is none: a read-only
// tool must call HoldsLog first.) It returns nil if the schema has the
// log's schema_version table, a *NoLogError if it does not (or no schema
// of the search_path exists), an error wrapping ErrBadDSN if dsn does not
// parse, and another error if the server cannot be reached or the schema
// cannot be read. It opens one connection and closes it before returning.
func HoldsLog(ctx context.Context, dsn string) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("postgres: %w: %w", ErrBadDSN, err)
	}
	name := describe(cfg)
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("postgres: connecting to %s: %w (is the server running, and are the DSN's host, port, user and database right?)", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema *string
	var tables int
	err = conn.QueryRow(ctx, `SELECT current_schema(), (SELECT count(*) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name = 'schema_version')`).Scan(&schema, &tables)
	if err != nil {
		return fmt.Errorf("postgres: reading the schema of %s: %w", name, err)
	}
	if schema == nil {
		return &NoLogError{Name: name}
	}
	if tables == 0 {
		return &NoLogError{Name: name, Schema: *schema}
	}
	return nil
}
