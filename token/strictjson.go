package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of any JSON we read (bodies, token
// headers and claims). An item is one level deep and identity providers
// nest claims two or three levels (realm_access.roles); 32 leaves room for
// both while a body of "[[[[…" is refused early rather than walked.
const maxJSONDepth = 32

// Errors of CheckJSON. Each is a reason to refuse input outright: encoding/json
// would otherwise pick one reading of an ambiguous text silently (the last of
// two equal keys, U+FFFD for broken text), while a gateway or another service
// in front of us may pick a different one.
var (
	ErrJSONSyntax    = errors.New("not valid JSON")
	ErrJSONUTF8      = errors.New("not valid UTF-8")
	ErrJSONSurrogate = errors.New("a \\u escape is an unpaired UTF-16 surrogate")
	ErrJSONDuplicate = errors.New("an object repeats a key")
	ErrJSONDepth     = fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	ErrJSONMultiple  = errors.New("more than one JSON value")
)

// CheckJSON reports whether b is exactly one JSON value whose every reading
// is the same: valid UTF-8, no unpaired surrogate escape (encoding/json
// turns both into U+FFFD without a word), no object with a repeated key at
// any depth (compared after unescaping, so "exp" and "e\u0078p" are the
// same key), at most maxJSONDepth levels. It allocates in proportion to b,
// and every caller bounds b first.
func CheckJSON(b []byte) error {
	if !utf8.Valid(b) {
		return ErrJSONUTF8
	}
	if err := checkEscapes(b); err != nil {
		return err
	}
	type frame struct {
		keys    map[string]struct{} // nil for an array
		wantKey bool
	}
	var stack []frame
	values := 0
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return ErrJSONSyntax
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				if _, dup := stack[n-1].keys[k]; dup {
					return ErrJSONDuplicate
				}
				stack[n-1].keys[k] = struct{}{}
				stack[n-1].wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if len(stack) == maxJSONDepth {
				return ErrJSONDepth
			}
			if len(stack) == 0 && values > 0 {
				return ErrJSONMultiple
			}
			f := frame{}
			if tok == json.Delim('{') {
				f = frame{keys: map[string]struct{}{}, wantKey: true}
			}
			stack = append(stack, f)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value (a scalar, or a container that just closed) is complete.
		if n := len(stack); n > 0 {
			stack[n-1].wantKey = stack[n-1].keys != nil
		} else if values++; values > 1 {
			return ErrJSONMultiple
		}
	}
	// json.Decoder.Token reports a clean EOF even inside an open container
	// (found by FuzzCheckJSON: `""[` passed), so the stack must be empty.
	if values != 1 || len(stack) != 0 {
		return ErrJSONSyntax
	}
	return nil
}

// checkEscapes refuses \u escapes that name half of a UTF-16 surrogate pair
// without the other half. A backslash can only occur inside a JSON string,
// so the raw bytes can be scanned without tracking where strings begin.
func checkEscapes(b []byte) error {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 >= len(b) {
			return ErrJSONSyntax
		}
		if b[i+1] != 'u' {
			i++ // a two-character escape: skip the escaped character
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			return ErrJSONSyntax
		}
		i += 5
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return ErrJSONSurrogate
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' {
				return ErrJSONSurrogate
			}
			lo, ok := hex4(b, i+3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return ErrJSONSurrogate
			}
			i += 6
		}
	}
	return nil
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
