package tenancy

import (
	"database/sql"
	"errors"

	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// Resolved is a tenant that a Directory resolved and found servable: its
// registry row, and what a scope on it needs (the pool that serves it, the
// limits of its transactions). Only Directory.Active makes one; its fields
// are unexported, so a hand-made or zero Resolved opens nothing, and a
// handler cannot reach a tenant's data without passing the directory's
// checks (exists, servable status, schema version this binary serves).
type Resolved struct {
	row models.Tenant
	// db is the pool that serves the tenant: the directory decides it, so
	// a tenant placed on another server is served by that server's pool.
	db     *gorm.DB
	limits Limits
	dir    *Directory
}

// ErrUnresolved is returned by WithTx for a Resolved that no Directory
// produced (the zero value). It is a programming error, not a client's.
var ErrUnresolved = errors.New("tenancy: tenant was not resolved by a Directory")

// Row returns a copy of the tenant's registry row as it was resolved.
func (r Resolved) Row() models.Tenant { return r.row }

// Name returns the tenant's name.
func (r Resolved) Name() string { return r.row.Name }

// ID returns the tenant's registry id.
func (r Resolved) ID() int64 { return r.row.ID }

// ReadOnly reports whether the tenant is served reads only.
func (r Resolved) ReadOnly() bool { return r.row.Status == models.StatusReadOnly }

// resolve wraps a row the directory judged servable.
func (d *Directory) resolve(t models.Tenant) Resolved {
	return Resolved{row: t, db: d.db, limits: d.limits, dir: d}
}

// Monitor returns a Monitor on the directory's own pool: for tests and
// tools with one pool only (a server opens one of its own, OpenMonitor).
func (d *Directory) Monitor() *Monitor { return NewMonitor(d.db) }

// PoolStats reports the figures of the pool that serves the directory's
// tenants, read in process (no query).
func (d *Directory) PoolStats() (sql.DBStats, error) {
	s, err := d.db.DB()
	if err != nil {
		return sql.DBStats{}, err
	}
	return s.Stats(), nil
}
