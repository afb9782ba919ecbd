package tenancy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tenantry/tenantry/internal/pgtest"
	"github.com/tenantry/tenantry/migrations"
	"github.com/tenantry/tenantry/models"
)

// A lookup reads the tenant as active; before it stores the row, the
// tenant is suspended and SetStatus returns. The stale row must not be
// cached: this process never serves the tenant again.
func TestSuspensionWinsARaceWithACacheFill(t *testing.T) {
	ctx := context.Background()
	r := pgtest.NewDBWithRoles(t)
	db, err := Open(ctx, r.DDLURL, DefaultPool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	if err := migrations.ApplyShared(ctx, db); err != nil {
		t.Fatal(err)
	}
	d := NewDirectory(db, WithTTL(time.Minute))
	if _, err := d.Onboard(ctx, "racy"); err != nil {
		t.Fatal(err)
	}
	raced := false
	d.afterRead = func(name string) {
		if raced {
			return
		}
		raced = true
		if _, err := d.SetStatus(ctx, name, models.StatusSuspended); err != nil {
			t.Error(err)
		}
	}
	_, _ = d.Active(ctx, "racy") // read "active", then the suspension lands
	if !raced {
		t.Fatal("the hook did not run")
	}
	if _, err := d.Active(ctx, "racy"); !errors.Is(err, models.ErrForbidden) {
		t.Fatalf("after SetStatus returned: %v, want ErrForbidden", err)
	}
}
