package tenancy

import "gorm.io/gorm"

// adminPlugin carries the DDL role's handle on a request role's handle, so
// a Directory made over the request handle alone still onboards and
// migrates as the DDL role. It is a GORM plugin only to ride on the
// handle's shared configuration; it hooks into nothing.
type adminPlugin struct{ admin *gorm.DB }

const adminPluginName = "tenancy:admin"

func (adminPlugin) Name() string              { return adminPluginName }
func (adminPlugin) Initialize(*gorm.DB) error { return nil }
func adminOf(db *gorm.DB) (*gorm.DB, bool) {
	if db == nil || db.Config == nil {
		return nil, false
	}
	p, ok := db.Config.Plugins[adminPluginName].(adminPlugin)
	return p.admin, ok
}

// AttachAdmin records admin, the DDL role's handle, on db, the request
// role's handle: NewDirectory(db) then uses admin for onboarding,
// offboarding, status changes and migrations unless WithAdmin says
// otherwise. The test harness attaches it, so tests that hold one handle
// get the strict two-role setup.
func AttachAdmin(db, admin *gorm.DB) error { return db.Use(adminPlugin{admin: admin}) }
