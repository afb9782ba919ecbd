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

	"github.com/gin-gonic/gin"
)

// readBody reads the whole (size-limited) body.
func readBody(c *gin.Context) ([]byte, error) {
	if c.Request.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(c.Request.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &clientError{kind: errTooLarge, detail: fmt.Sprintf("the body exceeds %d bytes", tooBig.Limit)}
	}
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || c.Request.Context().Err() != nil) {
		// The request's deadline passed before the body arrived.
		return nil, &clientError{kind: errBodyTimeout, detail: "the body did not arrive before the request's deadline", cause: err}
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
	return decodeJSON(bytes.NewReader(b), v)
}

// decodeJSON reads exactly one JSON object from r into v.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	err := dec.Decode(v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return invalid("the body must be a JSON object")
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return invalid("the body must be a JSON object")
	case errors.As(err, &typeErr):
		return invalid(fmt.Sprintf("field %q must be %s", typeErr.Field, jsonKind(typeErr.Type)))
	case err != nil:
		return invalid("the body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("the body must hold one JSON object and nothing after it")
	}
	return nil
}

// intQuery reads an optional non-negative integer query parameter.
func intQuery(c *gin.Context, name string, def, max int) (int, error) {
	v, ok := c.GetQuery(name)
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > max {
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
