package models

import (
	"errors"
	"strings"
	"testing"
)

func TestItemInputValidate(t *testing.T) {
	tests := []struct {
		name  string
		in    ItemInput
		field string // "" when valid
	}{
		{"minimal", ItemInput{Name: "x"}, ""},
		{"at the limits", ItemInput{Name: strings.Repeat("é", MaxItemName), Description: strings.Repeat("d", MaxItemDescription)}, ""},
		{"no name", ItemInput{Description: "d"}, "name"},
		{"long name", ItemInput{Name: strings.Repeat("n", MaxItemName+1)}, "name"},
		{"long description", ItemInput{Name: "n", Description: strings.Repeat("d", MaxItemDescription+1)}, "description"},
		{"NUL in name", ItemInput{Name: "a\x00b"}, "name"},
		{"NUL in description", ItemInput{Name: "a", Description: "\x00"}, "description"},
		{"bad UTF-8", ItemInput{Name: "\xff"}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			var fe *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ErrInvalid)):
				t.Fatalf("Validate() = %v, want an invalid %q", err, tt.field)
			}
		})
	}
}
