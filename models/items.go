package models

import (
	"database/sql"
	"errors"

	"gorm.io/gorm"
)

// Pagination limits for item lists: a page of 50 unless asked, never more
// than 1000 rows in one response (OWASP API4: records per page).
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// ListItems returns one page of items ordered by id. tx must be a tenant
// transaction (tenancy.WithTx); the items are that tenant's.
func ListItems(tx *gorm.DB, limit, offset int) ([]Item, error) {
	return queryItems(tx, limit, "SELECT "+itemColumns+" FROM items ORDER BY id LIMIT $1 OFFSET $2", limit, offset)
}

// ListItemsAfter returns up to limit items whose id is above after, ordered
// by id: keyset pagination. Unlike an offset, which the database reads and
// discards row by row, it seeks the primary key index, so the millionth
// page costs what the first does.
func ListItemsAfter(tx *gorm.DB, limit int, after int64) ([]Item, error) {
	return queryItems(tx, limit, "SELECT "+itemColumns+" FROM items WHERE id > $2 ORDER BY id LIMIT $1", limit, after)
}

// queryItems runs query, a constant whose first parameter is the page size
// limit, on tx's connection and scans its rows. Like GetItem it bypasses
// GORM's statement building and reflective scan, per row here.
func queryItems(tx *gorm.DB, limit int, query string, args ...any) ([]Item, error) {
	if tx.Error != nil {
		return nil, tx.Error
	}
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	items := make([]Item, 0, max(0, min(limit, DefaultPageSize))) // grown by append past a default page
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.ID, &it.Name, &it.Description, &it.CreatedAt, &it.UpdatedAt); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// HasItems reports whether the tenant holds at least n items. It counts no
// further than n, so a quota check costs at most n index entries however
// many rows there are.
func HasItems(tx *gorm.DB, n int64) (bool, error) {
	var got int64
	err := tx.Raw("SELECT count(*) FROM (SELECT 1 FROM items LIMIT ?) s", n).Scan(&got).Error
	return got >= n, err
}

// SchemaBytes returns the disk size of the scope's schema: every table
// with its indexes and TOAST. It reads file sizes, not rows, so it is cheap,
// and it counts dead rows until VACUUM reclaims them.
func SchemaBytes(tx *gorm.DB) (int64, error) {
	var n int64
	err := tx.Raw(`SELECT coalesce(sum(pg_total_relation_size(oid)), 0)::bigint FROM pg_class
		WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p', 'm')`).Scan(&n).Error
	return n, err
}

// CreateItem inserts an item built from in.
func CreateItem(tx *gorm.DB, in ItemInput) (Item, error) {
	it := Item{Name: in.Name, Description: in.Description}
	err := tx.Create(&it).Error
	return it, err
}

// itemColumns are Item's columns in the order GetItem scans them.
const itemColumns = "id, name, description, created_at, updated_at"

// GetItem returns the item with id, or ErrNotFound.
//
// It is the hottest query of the service, so it runs on tx's connection
// (its transaction, when tx is one) through database/sql directly: GORM's
// tx.Take(&it, id) builds a statement, its clauses and a reflective scan
// on every call, about 40 allocations and a quarter of the read's Go CPU
// (BenchmarkItemRead). The result is the same row; Item has no hooks.
func GetItem(tx *gorm.DB, id int64) (Item, error) {
	var it Item
	if tx.Error != nil {
		return it, tx.Error
	}
	err := tx.Statement.ConnPool.QueryRowContext(tx.Statement.Context,
		"SELECT "+itemColumns+" FROM items WHERE id = $1", id).
		Scan(&it.ID, &it.Name, &it.Description, &it.CreatedAt, &it.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, ErrNotFound
	}
	return it, err
}

// UpdateItem replaces the client-settable fields of item id.
func UpdateItem(tx *gorm.DB, id int64, in ItemInput) (Item, error) {
	it, err := GetItem(tx, id)
	if err != nil {
		return it, err
	}
	it.Name, it.Description = in.Name, in.Description
	err = tx.Select("name", "description", "updated_at").Save(&it).Error
	return it, err
}

// DeleteItem removes item id, or returns ErrNotFound.
func DeleteItem(tx *gorm.DB, id int64) error {
	res := tx.Delete(&Item{}, id)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}
