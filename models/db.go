package models

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// PoolSize bounds the connection pool. On a small machine an unbounded
// database/sql pool collapses under load; a pool a few times the core count
// keeps PostgreSQL busy without thrashing it.
const PoolSize = 16

// Open connects to the database at url through pgx in exec mode: bun
// interpolates its queries, so pgx's default statement cache would prepare
// every distinct text (a round trip each, and memory that grows).
func Open(url string, poolSize int) (*bun.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	// Exec mode uses neither cache; each would still take memory on every connection.
	cfg.StatementCacheCapacity, cfg.DescriptionCacheCapacity = 0, 0
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if poolSize <= 0 {
		poolSize = PoolSize
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(poolSize)
	sqldb.SetMaxIdleConns(poolSize)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	return bun.NewDB(sqldb, pgdialect.New(), bun.WithDiscardUnknownColumns()), nil
}

// Ping checks that the database answers within timeout.
func Ping(ctx context.Context, db *bun.DB, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return db.PingContext(ctx)
}

// InTx runs fn in a transaction, committing when it returns nil.
func InTx(ctx context.Context, db bun.IDB, fn func(tx bun.Tx) error) error {
	return db.RunInTx(ctx, &sql.TxOptions{}, func(ctx context.Context, tx bun.Tx) error { return fn(tx) })
}
