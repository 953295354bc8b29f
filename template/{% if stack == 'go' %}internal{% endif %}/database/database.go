// Package database opens the connection pool with the contract's bounds.
package database

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ConnectTimeout: a dead or unreachable database fails fast instead of
// holding requests.
const ConnectTimeout = 2 * time.Second

// NewPool creates a pool without connecting: start-up never depends on the
// database (readiness reports it). Every connection carries statement_timeout
// and lock_timeout = dbTimeout, so a held lock or a slow query ends in the
// database too, not only in the request's context.
func NewPool(ctx context.Context, databaseURL, appName string, dbTimeout time.Duration) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's message quotes parts of the URL: never pass it on
		return nil, errors.New("DATABASE_URL could not be parsed as a PostgreSQL connection URL")
	}
	ms := strconv.FormatInt(dbTimeout.Milliseconds(), 10)
	params := cfg.ConnConfig.RuntimeParams
	params["statement_timeout"] = ms
	params["lock_timeout"] = ms
	params["application_name"] = appName
	cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	cfg.MaxConns = 10
	// Replace connections a restarted database has dropped.
	cfg.HealthCheckPeriod = 15 * time.Second
	return pgxpool.NewWithConfig(ctx, cfg)
}
