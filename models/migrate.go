package models

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/agentroster/agentroster/migrations"
)

// migrationLockKey is the advisory lock that serialises migrations between
// servers starting together; PostgreSQL drops it if its holder dies.
const migrationLockKey = 7_204_118_305

func newMigrator(db *bun.DB) (*migrate.Migrator, error) {
	ms := migrate.NewMigrations()
	if err := ms.Discover(migrations.FS); err != nil {
		return nil, err
	}
	return migrate.NewMigrator(db, ms, migrate.WithMarkAppliedOnSuccess(true)), nil
}

// withMigrationLock runs fn while holding the advisory lock (waiting for it)
// and bun's migration lock row. A lock row left by a crashed process is safe to
// clear once the advisory lock is ours.
func withMigrationLock(ctx context.Context, db *bun.DB, fn func(m *migrate.Migrator) error) error {
	m, err := newMigrator(db)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrationLockKey); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrationLockKey)
	if err := m.Init(ctx); err != nil {
		return err
	}
	if err := m.Lock(ctx); err != nil {
		if err := m.Unlock(ctx); err != nil {
			return err
		}
		if err := m.Lock(ctx); err != nil {
			return err
		}
	}
	defer m.Unlock(context.WithoutCancel(ctx))
	return fn(m)
}

// Migrate applies every pending migration.
func Migrate(ctx context.Context, db *bun.DB, log *slog.Logger) error {
	return withMigrationLock(ctx, db, func(m *migrate.Migrator) error {
		group, err := m.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if !group.IsZero() {
			log.Info("applied migrations", "group", group.ID, "migrations", group.Migrations.String())
		}
		return nil
	})
}

// Rollback undoes the last group of applied migrations.
func Rollback(ctx context.Context, db *bun.DB, log *slog.Logger) error {
	return withMigrationLock(ctx, db, func(m *migrate.Migrator) error {
		group, err := m.Rollback(ctx)
		if err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		if group.IsZero() {
			log.Info("nothing to roll back")
		} else {
			log.Info("rolled back", "group", group.ID, "migrations", group.Migrations.String())
		}
		return nil
	})
}

// MigrationStatus writes one line per migration: applied or pending.
func MigrationStatus(ctx context.Context, db *bun.DB, w io.Writer) error {
	m, err := newMigrator(db)
	if err != nil {
		return err
	}
	if err := m.Init(ctx); err != nil {
		return err
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return err
	}
	for _, mig := range ms {
		state := "pending"
		if mig.IsApplied() {
			state = fmt.Sprintf("applied (group %d, %s)", mig.GroupID, mig.MigratedAt.UTC().Format("2006-01-02 15:04:05"))
		}
		fmt.Fprintf(w, "%s_%s\t%s\n", mig.Name, mig.Comment, state)
	}
	return nil
}
