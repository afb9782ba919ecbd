package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/tenantry/tenantry/models"
	"github.com/tenantry/tenantry/token"
)

// readBody reads the whole (size-limited) body.
func readBody(c *gin.Context) ([]byte, error) {
	if c.Request.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(c.Request.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &clientError{Kind: errTooLarge, Detail: fmt.Sprintf("the body exceeds %d bytes", tooBig.Limit)}
	}
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || c.Request.Context().Err() != nil) {
		// The request's deadline passed before the body arrived.
		return nil, &clientError{Kind: errBodyTimeout, Detail: "the body did not arrive before the request's deadline", Cause: err}
	}
	if err != nil {
		return nil, invalid("the body could not be read")
	}
	return b, nil
}

// bindJSON reads the body as one JSON object into v.
func bindJSON(c *gin.Context, v any) error {
	b, err := readBody(c)
	if err != nil {
		return err
	}
	return decodeJSON(b, v)
}

// decodeJSON reads b, exactly one JSON object, into the struct v. It is
// strict where encoding/json is lenient, so a body has one meaning whoever
// reads it: invalid UTF-8 and unpaired surrogate escapes are refused, as
// the query form refuses them (encoding/json would store U+FFFD); keys must
// match a field's JSON name exactly (encoding/json folds case, so "NAME"
// would set name), appear once and be known (an "id" or "tenant" in an
// item body is a client's mistake, not something to drop silently).
func decodeJSON(b []byte, v any) error {
	switch err := token.CheckJSON(b); {
	case errors.Is(err, token.ErrJSONUTF8), errors.Is(err, token.ErrJSONSurrogate):
		return invalid("the body must be valid UTF-8 text")
	case errors.Is(err, token.ErrJSONDuplicate):
		return invalid("the body repeats a key")
	case errors.Is(err, token.ErrJSONDepth):
		return invalid("the body is nested too deeply")
	case errors.Is(err, token.ErrJSONMultiple):
		return invalid("the body must hold one JSON object and nothing after it")
	case err != nil:
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return invalid("the body must be a JSON object")
		}
		return invalid("the body is not valid JSON")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil || keys == nil {
		return invalid("the body must be a JSON object")
	}
	fields := jsonFields(reflect.TypeOf(v))
	for k := range keys {
		if _, ok := fields[k]; !ok {
			return models.Invalid(k, "is not a field of this body (names are case-sensitive)")
		}
	}
	err := json.Unmarshal(b, v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr):
		return invalid(fmt.Sprintf("field %q must be %s", typeErr.Field, jsonKind(typeErr.Type)))
	case err != nil:
		return invalid("the body is not valid JSON")
	}
	return nil
}

// jsonFields lists the JSON names of a struct's (or pointer to struct's)
// exported fields.
func jsonFields(t reflect.Type) map[string]struct{} {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := map[string]struct{}{}
	if t.Kind() != reflect.Struct {
		return names
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = struct{}{}
	}
	return names
}

// intQuery reads an optional non-negative integer query parameter, in its
// canonical decimal spelling and given at most once (which of two values
// counts would depend on the reader).
func intQuery(c *gin.Context, name string, def, max int) (int, error) {
	vs, ok := c.GetQueryArray(name)
	if !ok || len(vs) == 1 && vs[0] == "" {
		return def, nil
	}
	if len(vs) > 1 {
		return 0, invalid(fmt.Sprintf("%s may be given only once", name))
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < 0 || n > max || strconv.Itoa(n) != vs[0] {
		return 0, invalid(fmt.Sprintf("%s must be an integer from 0 to %d", name, max))
	}
	return n, nil
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "an object"
}
