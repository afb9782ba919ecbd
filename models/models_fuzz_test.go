package models

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzItemInputValidate checks Validate against the rules stated plainly:
// an item is accepted exactly when its name is non-empty, both fields are
// valid UTF-8 without NUL, and they fit the column sizes in characters.
func FuzzItemInputValidate(f *testing.F) {
	f.Add("anvil", "heavy")
	f.Add("", "")
	f.Add("a\x00", "")
	f.Add("\xff", "")
	f.Add("x", "\xed\xa0\x80")
	f.Add(strings.Repeat("é", MaxItemName), strings.Repeat("d", MaxItemDescription))
	f.Add(strings.Repeat("é", MaxItemName+1), "")
	f.Fuzz(func(t *testing.T, name, desc string) {
		ok := name != "" && utf8.ValidString(name) && utf8.ValidString(desc) &&
			!strings.ContainsRune(name, 0) && !strings.ContainsRune(desc, 0) &&
			utf8.RuneCountInString(name) <= MaxItemName && utf8.RuneCountInString(desc) <= MaxItemDescription
		err := ItemInput{Name: name, Description: desc}.Validate()
		if (err == nil) != ok {
			t.Fatalf("Validate(%q, %q) = %v, want ok=%v", name, desc, err, ok)
		}
		var fe *FieldError
		if err != nil && (!errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || (fe.Field != "name" && fe.Field != "description")) {
			t.Fatalf("Validate's error %v does not name a field", err)
		}
	})
}
