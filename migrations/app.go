package migrations

// App declares what a program keeps in the database beside tenantry's own
// tenant registry: the models of every tenant schema and the steps that
// build them, and the models and steps of the program's shared tables.
// tenantry's own service is one such program (Tenantry).
//
// Steps are SQL, or Go (Step.Go) for what SQL cannot do. A tenant step
// runs with the search_path pinned to the tenant schema it migrates, a
// shared step with it pinned to SharedSchema; both name tables
// unqualified. Each schema records its history in its own ledger, so the
// program's shared history and tenantry's registry history never collide.
type App struct {
	// Tenant is the history of every tenant schema and its models.
	Tenant Plan
	// Shared is the history of the program's shared tables, applied after
	// tenantry's own shared steps. Its Models, when set, are checked
	// against its steps as the tenant plan's are.
	Shared Plan
	// SharedSchema names the schema of the program's shared tables
	// (DefaultSharedSchema when empty). It must not look like a tenant
	// schema (t_...) nor be tenantry's registry schema.
	SharedSchema string
}

// DefaultSharedSchema is the schema of a program's shared tables when its
// App names none.
const DefaultSharedSchema = "app"

// Tenantry is tenantry's own service, declared as a program declares
// itself: the items of every tenant, and no shared tables of its own.
var Tenantry = App{Tenant: Items}

// Schema returns the schema of the program's shared tables.
func (a App) Schema() string {
	if a.SharedSchema == "" {
		return DefaultSharedSchema
	}
	return a.SharedSchema
}
