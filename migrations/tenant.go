package migrations

import (
	"errors"
	"fmt"

	"github.com/tenantry/tenantry/models"
	"gorm.io/gorm"
)

// ErrEdited means an applied step's SQL changed after it was applied.
var ErrEdited = errors.New("applied migration step was edited (checksum mismatch)")

// BuildTenant creates the tenant tables in the schema that tx has pinned,
// with GORM's AutoMigrate. tx must be a transaction whose search_path holds
// that schema alone: AutoMigrate finds and creates tables through
// current_schema().
func BuildTenant(tx *gorm.DB) error {
	if err := tx.AutoMigrate(models.TenantModels()...); err != nil {
		return fmt.Errorf("automigrate tenant models: %w", err)
	}
	return nil
}
