// Package pgtest gives tests a PostgreSQL database to run custody against:
// a fresh schema of their own in a shared test server, dropped when the test
// ends.
//
// The server is the one named by the environment variable
// CUSTODY_TEST_POSTGRES (a DSN such as
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable), or DefaultServer
// if it is unset. If the server cannot be reached the test is skipped with
// a loud message, unless CUSTODY_REQUIRE_POSTGRES=1 (as CI sets it): then it
// fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultServer is the server used when CUSTODY_TEST_POSTGRES is unset.
const DefaultServer = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Environment variables read by this package.
const (
	// ServerEnv names the DSN of the test server.
	ServerEnv = "CUSTODY_TEST_POSTGRES"
	// RequireEnv, set to 1, makes an unreachable server fail the test
	// instead of skipping it.
	RequireEnv = "CUSTODY_REQUIRE_POSTGRES"
)

// SchemaPrefix starts the name of every schema NewSchema creates.
const SchemaPrefix = "custody_test_"

// Server returns the DSN of the test server: $CUSTODY_TEST_POSTGRES or
// DefaultServer.
func Server() string {
	if s := os.Getenv(ServerEnv); s != "" {
		return s
	}
	return DefaultServer
}

// DSN returns a DSN for a new, empty schema of its own in the test server
// (the server DSN with search_path set to it), and drops the schema with
// everything in it when tb and its subtests end. It skips tb, or fails it
// if CUSTODY_REQUIRE_POSTGRES=1, when the server is unreachable.
func DSN(tb testing.TB) string {
	tb.Helper()
	server := Server()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dsn, drop, err := NewSchema(ctx, server)
	if err != nil {
		Unavailable(tb, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	return dsn
}

// Unavailable ends tb because the test server could not be used (err says
// why): it skips tb with a loud message saying that the PostgreSQL tests did
// not run and how to point them at a server, or fails it if
// CUSTODY_REQUIRE_POSTGRES=1.
func Unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("PostgreSQL is required (%s=1) but the test server cannot be used: cannot create a test schema in %s: %v\n"+
			"Point %s at a PostgreSQL server (a DSN, e.g. %s; the user needs CREATE on the database).",
			RequireEnv, redact(Server()), err, ServerEnv, DefaultServer)
	}
	msg := fmt.Sprintf("PostgreSQL TESTS DID NOT RUN: cannot create a test schema in %s: %v\n"+
		"Point %s at a PostgreSQL server (a DSN, e.g. %s; the user needs CREATE on the database), "+
		"or set %s=1 to make this a failure.", redact(Server()), err, ServerEnv, DefaultServer, RequireEnv)
	tb.Skip(msg)
}

// NewSchema creates a schema with a random name (SchemaPrefix and 16 hex
// digits) in the database of server, and returns server's DSN with
// search_path set to it, and a function that drops the schema (CASCADE).
// It is the part of DSN that does not need a test, for benchmarks that
// keep a schema across runs and for TestMain functions.
func NewSchema(ctx context.Context, server string) (dsn string, drop func(context.Context) error, err error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	name := SchemaPrefix + hex.EncodeToString(rnd[:])
	dsn, err = WithSearchPath(server, name)
	if err != nil {
		return "", nil, err
	}
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", nil, fmt.Errorf("creating schema %s: %w", name, err)
	}
	drop = func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			return fmt.Errorf("dropping schema %s: %w", name, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			return fmt.Errorf("dropping schema %s: %w", name, err)
		}
		removeIndexDirs(name)
		return nil
	}
	return dsn, drop, nil
}

// removeIndexDirs removes the lookup indexes that stores opened with the
// default options keep for schema in the user's cache directory
// (postgres.DefaultIndexDir, in subdirectories named "<schema>-..."; this
// package cannot import package postgres, whose tests import it). The
// schema's name is random, so nothing else matches.
func removeIndexDirs(schema string) {
	c, err := os.UserCacheDir()
	if err != nil {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(c, "custody", "postgres-index", schema+"-*"))
	for _, d := range dirs {
		os.RemoveAll(d)
	}
}

// WithSearchPath returns dsn (a URL or a "key=value ..." string) with its
// search_path parameter set to schema, a plain identifier.
func WithSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parsing DSN %s: %w", redact(dsn), err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema, nil
}

// redact returns dsn without the password of a URL.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Exec runs statements in the database of dsn (its search_path schema),
// as someone with access to the database could: tests use it to damage or
// tamper with a log behind the store's back. It fails tb on any error.
func Exec(tb testing.TB, dsn string, qs ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("pgtest: connecting to %s: %v", redact(dsn), err)
	}
	defer conn.Close(ctx)
	for _, q := range qs {
		if _, err := conn.Exec(ctx, q); err != nil {
			tb.Fatalf("pgtest: %s: %v", q, err)
		}
	}
}

// QueryInt runs a query returning one integer (such as a count) in the
// database of dsn and returns it. It fails tb on any error.
func QueryInt(tb testing.TB, dsn, q string) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("pgtest: connecting to %s: %v", redact(dsn), err)
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		tb.Fatalf("pgtest: %s: %v", q, err)
	}
	return n
}
