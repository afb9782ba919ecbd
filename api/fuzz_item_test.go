package api

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/tenantry/tenantry/models"
)

// FuzzItemBody checks the item body decoder: an accepted body is valid
// JSON in UTF-8 naming only "name" and "description" exactly, its fields
// are what encoding/json reads from it, and the item passes Validate.
func FuzzItemBody(f *testing.F) {
	for _, s := range []string{`{"name":"anvil","description":"heavy"}`, `{"name":"x","name":"y"}`, `{"NAME":"x"}`, `{"name":"x","id":1}`,
		`{"name":"\ud800"}`, "{\"name\":\"\xff\"}", `{"name":"a\u0000b"}`, `{"name":7}`, `{"name":null}`, `[]`, `{"name":"x"} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in models.ItemInput
		if decodeJSON(b, &in) != nil || in.Validate() != nil {
			return
		}
		if !utf8.Valid(b) || !json.Valid(b) {
			t.Fatalf("accepted %q, which is not valid JSON in UTF-8", b)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("accepted %q, which is not an object: %v", b, err)
		}
		for k := range m {
			if k != "name" && k != "description" {
				t.Fatalf("accepted key %q", k)
			}
		}
		if m["name"] != in.Name {
			t.Fatalf("name read as %q, the JSON says %v", in.Name, m["name"])
		}
		if d, ok := m["description"]; ok && d != nil && d != in.Description {
			t.Fatalf("description read as %q, the JSON says %v", in.Description, d)
		}
	})
}
