package main

import (
	"context"

	"github.com/tenantry/tenantry/tenancy"
	"gorm.io/gorm"
)

// backupAdvice is what serve logs at start-up and `migrate status` prints
// when a whole-database pg_dump would no longer fit the server's lock
// table (tenancy.LockBudget): empty when it fits. A failed check is no
// reason to stop either command; it is reported in the advice's place.
func backupAdvice(ctx context.Context, db *gorm.DB) string {
	b, err := tenancy.BackupLocks(ctx, db)
	if err != nil {
		return "could not check the lock budget of a whole-database pg_dump: " + err.Error()
	}
	return b.Advice()
}
