package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custodylog/custody/store"
	"github.com/jackc/pgx/v5"
)

// TryLease takes the sequencer lease for holder if nobody holds it, if it
// has expired, or if holder already holds it (then it renews it), until ttl
// from the database's now(). It returns the lease as it stands afterwards
// and whether holder holds it. The epoch goes up by one whenever the lease
// passes to another holder (including after a release). One UPDATE does it
// all, so two servers racing for a free lease cannot both get it.
func (s *Store) TryLease(ctx context.Context, holder, addr string, ttl time.Duration) (store.Lease, bool, error) {
	if holder == "" {
		return store.Lease{}, false, errors.New("postgres: taking the lease: empty holder id: pass an id unique to the process")
	}
	if ttl <= 0 {
		return store.Lease{}, false, fmt.Errorf("postgres: taking the lease for %s: ttl %v, want a positive duration", holder, ttl)
	}
	var (
		l     store.Lease
		epoch int64
	)
	err := s.pool.QueryRow(ctx, `UPDATE lease SET
			epoch = CASE WHEN holder = $1 THEN epoch ELSE epoch + 1 END,
			holder = $1,
			addr = $2,
			expires = now() + $3 * INTERVAL '1 microsecond'
		WHERE id = 1 AND (holder = $1 OR holder = '' OR expires < now())
		RETURNING holder, addr, expires, epoch`,
		holder, addr, ttl.Microseconds()).Scan(&l.Holder, &l.Addr, &l.Expires, &epoch)
	if err == nil {
		l.Epoch = uint64(epoch)
		return l, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		if isRetryable(err) {
			// A concurrent TryLease won; report the lease it took.
			err = nil
		} else {
			return store.Lease{}, false, fmt.Errorf("postgres: taking the lease for %s: %w", holder, err)
		}
	}
	l, err = s.lease(ctx)
	if err != nil {
		return store.Lease{}, false, fmt.Errorf("postgres: taking the lease for %s: %w", holder, err)
	}
	return l, l.Holder == holder, nil
}

// lease reads the lease row.
func (s *Store) lease(ctx context.Context) (store.Lease, error) {
	var (
		l     store.Lease
		epoch int64
	)
	err := s.pool.QueryRow(ctx, "SELECT holder, addr, expires, epoch FROM lease WHERE id = 1").Scan(&l.Holder, &l.Addr, &l.Expires, &epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, errors.New("the lease table has no row: the database is damaged")
	}
	if err != nil {
		return l, fmt.Errorf("reading the lease: %w", err)
	}
	l.Epoch = uint64(epoch)
	return l, nil
}

// ReleaseLease gives the lease up if holder holds it, so that another server
// can take it at once; otherwise it does nothing.
func (s *Store) ReleaseLease(ctx context.Context, holder string) error {
	if holder == "" {
		return nil
	}
	_, err := s.pool.Exec(ctx, "UPDATE lease SET holder = '', addr = '', expires = now() WHERE id = 1 AND holder = $1", holder)
	if err != nil {
		return fmt.Errorf("postgres: releasing the lease of %s: %w", holder, err)
	}
	return nil
}
