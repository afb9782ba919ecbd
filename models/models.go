// Package models holds tenantry's entities, their validation and the error
// vocabulary shared by every other package. It knows nothing of HTTP, JWT,
// the environment or which schema a table lives in: the caller's transaction
// decides that (see tenancy.WithTx).
package models

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Status is a tenant's lifecycle state.
type Status string

// Tenant states. An active tenant is served; a suspended one exists but is
// not served at all; a read-only one is served reads, and its scopes run as
// a role with SELECT only, so no write can happen even through a bug.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
	StatusReadOnly  Status = "read-only"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return s == StatusActive || s == StatusSuspended || s == StatusReadOnly
}

// Served reports whether a tenant in state s may be served at all.
func (s Status) Served() bool { return s == StatusActive || s == StatusReadOnly }

// Tenant is a row of the shared tenant registry. Its table lives in the
// shared schema and is always reached schema-qualified, never through a
// tenant's search_path.
type Tenant struct {
	ID         int64  `gorm:"primaryKey" json:"id"`
	Name       string `gorm:"size:48;not null;uniqueIndex" json:"name"`
	SchemaName string `gorm:"size:63;not null;uniqueIndex" json:"schema_name"`
	Status     Status `gorm:"size:16;not null;default:active" json:"status"`
	// SchemaVersion is the migration version of the tenant's schema, as
	// the last migration recorded it (the schema's own ledger is the truth).
	SchemaVersion int       `json:"schema_version"`
	CreatedAt     time.Time `json:"created_at"`
	// DBRole and DBRoleRead are the tenant's PostgreSQL roles (read-write
	// and SELECT-only), named by the service at onboarding. Scopes switch
	// to one of them; clients never see them.
	DBRole     string `gorm:"column:db_role;size:63;not null;default:''" json:"-"`
	DBRoleRead string `gorm:"column:db_role_read;size:63;not null;default:''" json:"-"`
	// Server names the PostgreSQL server that holds the tenant's schema
	// ("home", the registry's own server, unless placed elsewhere).
	Server string `gorm:"column:server;size:32;not null;default:home" json:"server"`
}

// Item is the tenant-scoped model. It names no schema: the same struct reads
// and writes the items table of whichever tenant schema the surrounding
// transaction pinned.
type Item struct {
	ID          int64     `gorm:"primaryKey" json:"id"`
	Name        string    `gorm:"size:200;not null;index" json:"name"`
	Description string    `gorm:"size:2000;not null;default:''" json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Limits on item fields. The SQLAlchemy model of the service tenantry
// replaces left them unbounded; we bound them so one request cannot store
// megabytes in a row, and the column sizes above carry the same numbers so
// the database enforces them too.
const (
	MaxItemName        = 200
	MaxItemDescription = 2000
)

// ItemInput is what a client may set on an item.
type ItemInput struct {
	Name        string `json:"name" form:"name"`
	Description string `json:"description" form:"description"`
}

// Validate checks the input against the item limits.
func (in ItemInput) Validate() error {
	switch {
	case in.Name == "":
		return Invalid("name", "is required")
	case !utf8.ValidString(in.Name):
		return Invalid("name", "must be valid UTF-8")
	case !utf8.ValidString(in.Description):
		return Invalid("description", "must be valid UTF-8")
	case utf8.RuneCountInString(in.Name) > MaxItemName:
		return Invalid("name", "must be at most 200 characters")
	case utf8.RuneCountInString(in.Description) > MaxItemDescription:
		return Invalid("description", "must be at most 2000 characters")
	case strings.ContainsRune(in.Name, 0):
		// PostgreSQL text cannot hold NUL bytes (SQLSTATE 22021).
		return Invalid("name", "must not contain NUL characters")
	case strings.ContainsRune(in.Description, 0):
		return Invalid("description", "must not contain NUL characters")
	}
	return nil
}
