package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tenantry/tenantry/migrations"
	"gorm.io/gorm"
)

// MonitorPool is the connection budget of readiness probes and metric
// scrapes: one connection for a probe and one for a scrape, so neither
// queues behind the other, and neither ever waits for a slot of the tenant
// pool, which one busy tenant can fill (a healthy instance must not turn
// unready because its tenants are busy).
var MonitorPool = PoolConfig{MaxOpen: 2, MaxIdle: 2, MaxLifetime: 30 * time.Minute}

// Monitor answers readiness probes and fleet figures on a pool of its own.
type Monitor struct {
	db    *gorm.DB
	owned bool // Close closes db
}

// OpenMonitor opens a Monitor on its own small pool (MonitorPool).
func OpenMonitor(ctx context.Context, url string) (*Monitor, error) {
	db, err := Open(ctx, url, MonitorPool)
	if err != nil {
		return nil, fmt.Errorf("monitor pool: %w", err)
	}
	return &Monitor{db: db, owned: true}, nil
}

// NewMonitor returns a Monitor that shares db's pool: for tests and tools
// that have one pool only. A nil db gives a Monitor whose every call fails.
func NewMonitor(db *gorm.DB) *Monitor { return &Monitor{db: db} }

var errNoDB = errors.New("tenancy: monitor has no database")

func (m *Monitor) sqlDB() (*sql.DB, error) {
	if m == nil || m.db == nil {
		return nil, errNoDB
	}
	return m.db.DB()
}

// Ping checks that the database answers.
func (m *Monitor) Ping(ctx context.Context) error {
	s, err := m.sqlDB()
	if err != nil {
		return err
	}
	return classify(s.PingContext(ctx))
}

// Stats reports the monitor pool's own figures.
func (m *Monitor) Stats() (sql.DBStats, error) {
	s, err := m.sqlDB()
	if err != nil {
		return sql.DBStats{}, err
	}
	return s.Stats(), nil
}

// Fleet returns how many tenants the registry records at each schema
// version: the standing result of migrations, whichever process ran them.
func (m *Monitor) Fleet(ctx context.Context) (map[int]int, error) {
	if m == nil || m.db == nil {
		return nil, errNoDB
	}
	var rows []struct {
		SchemaVersion int
		N             int
	}
	err := m.db.WithContext(ctx).Raw("SELECT schema_version, count(*) AS n FROM " + migrations.TenantsTable + " GROUP BY 1").Scan(&rows).Error
	if err != nil {
		return nil, classify(fmt.Errorf("fleet figures: %w", err))
	}
	byVersion := make(map[int]int, len(rows))
	for _, r := range rows {
		byVersion[r.SchemaVersion] = r.N
	}
	return byVersion, nil
}

// Close closes the monitor's pool if it opened one.
func (m *Monitor) Close() error {
	if m == nil || !m.owned {
		return nil
	}
	s, err := m.db.DB()
	if err != nil {
		return err
	}
	return s.Close()
}
