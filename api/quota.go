package api

import (
	"fmt"

	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// Quota caps what one tenant may store; both limits are off at 0, and then
// a write pays nothing for them. The check runs in the write's own
// transaction, before the write, so a refused write changes nothing. Writes
// running at the same time may each pass it: a tenant can end up at most
// its pool share (tenancy.PoolConfig.TenantShare) minus one rows over the
// Items limit, and the Bytes limit is as loose as the disk size it reads.
type Quota struct {
	// Items caps the tenant's items (rows); checked when an item is created.
	Items int64
	// Bytes caps the disk size of the tenant's schema (tables, indexes,
	// TOAST); checked when an item is created or updated.
	Bytes int64
}

// check refuses a write that the tenant's quota no longer allows. creating
// is true for a new row (the Items limit applies), false for an update.
func (q Quota) check(tx *gorm.DB, creating bool) error {
	if creating && q.Items > 0 {
		full, err := models.HasItems(tx, q.Items)
		if err != nil {
			return err
		}
		if full {
			return &clientError{Kind: models.ErrQuota, Detail: fmt.Sprintf("the tenant holds its quota of %d items; delete some first", q.Items)}
		}
	}
	if q.Bytes > 0 {
		n, err := models.SchemaBytes(tx)
		if err != nil {
			return err
		}
		if n >= q.Bytes {
			return &clientError{Kind: models.ErrQuota, Detail: fmt.Sprintf("the tenant's data fills its quota of %d bytes; delete some first", q.Bytes)}
		}
	}
	return nil
}
