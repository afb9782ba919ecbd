package tenancy

// ForceCitusMode makes d take its Citus code paths (the two-step onboarding,
// statements one at a time, tenant roles that may log in) on plain
// PostgreSQL, where the Citus settings they make are unused placeholders, so
// CI covers them without a Citus cluster.
func ForceCitusMode(d *Directory) {
	d.clusterMu.Lock()
	d.cluster = &Cluster{Citus: true, Version: "forced by a test"}
	d.clusterMu.Unlock()
}

// ReadPinSQL is the prepared read pin's text, for BenchmarkReadProtocol.
const ReadPinSQL = readPinSQL

// PinText is the simple-protocol pin of a tenant scope, for
// BenchmarkReadProtocol.
func PinText(schema, role string) (string, error) {
	return pinSQL(pinSpec{Schema: schema, Role: role, Limits: RequestLimits})
}
