package models

import (
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
	items := []Item{}
	err := tx.Order("id").Limit(limit).Offset(offset).Find(&items).Error
	return items, err
}

// ListItemsAfter returns up to limit items whose id is above after, ordered
// by id: keyset pagination. Unlike an offset, which the database reads and
// discards row by row, it seeks the primary key index, so the millionth
// page costs what the first does.
func ListItemsAfter(tx *gorm.DB, limit int, after int64) ([]Item, error) {
	items := []Item{}
	err := tx.Where("id > ?", after).Order("id").Limit(limit).Find(&items).Error
	return items, err
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

// GetItem returns the item with id, or ErrNotFound.
func GetItem(tx *gorm.DB, id int64) (Item, error) {
	var it Item
	err := tx.Take(&it, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return it, ErrNotFound
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
