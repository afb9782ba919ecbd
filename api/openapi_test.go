package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/go-cmp/cmp"
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/tenancy"
)

var contract struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

func loadContract(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	contract.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
		if err == nil {
			err = doc.Validate(context.Background())
		}
		if err == nil {
			contract.router, err = gorillamux.NewRouter(doc)
		}
		contract.doc, contract.err = doc, err
	})
	if contract.err != nil {
		t.Fatalf("openapi.json: %v", contract.err)
	}
	return contract.doc, contract.router
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, _ := loadContract(t)
	if doc.OpenAPI[:2] != "3." {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	if doc.Components.SecuritySchemes["bearerAuth"] == nil || doc.Components.Schemas["Problem"] == nil {
		t.Fatal("the bearer scheme or the Problem schema is missing")
	}
}

var ginParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPIMatchesTheRouterBothWays: a route served without
// documentation fails, and so does a documented operation nobody serves.
func TestOpenAPIMatchesTheRouterBothWays(t *testing.T) {
	doc, _ := loadContract(t)
	s := newStack(t, tenancy.DefaultPool, nil)
	var served, documented []string
	for _, r := range api.RoutesOf(s.srv) {
		served = append(served, r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}"))
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	sort.Strings(served)
	sort.Strings(documented)
	if diff := cmp.Diff(documented, served); diff != "" {
		t.Fatalf("router and openapi.json disagree (-documented +served):\n%s", diff)
	}
}

// checkContract validates one real response against the document. Only
// the router's own 404 (unknown path) and 405 answers may come from a route
// the document does not know; TestOpenAPIMatchesTheRouterBothWays covers
// which routes exist.
func checkContract(t testing.TB, req *http.Request, status int, header http.Header, body []byte) error {
	t.Helper()
	_, router := loadContract(t)
	// Match against the document's server, whatever host the test used.
	req = req.Clone(context.Background())
	req.URL.Scheme, req.URL.Host, req.Host = "http", "localhost:8080", "localhost:8080"
	route, params, err := router.FindRoute(req)
	if err != nil {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil
		}
		return fmt.Errorf("%s %s → %d: no documented route: %v", req.Method, req.URL.Path, status, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s → %d does not match openapi.json: %v\nbody: %s", req.Method, req.URL, status, err, body)
	}
	return nil
}

// The validator itself can fail: a response missing a required field, or
// with an undocumented status, is refused.
func TestContractCheckRefusesDrift(t *testing.T) {
	req := httptest.NewRequest("GET", "http://localhost:8080/items/1", nil)
	h := http.Header{"Content-Type": {"application/json"}}
	if err := checkContract(t, req, 200, h, []byte(`{"id":1,"name":"x","description":"d"}`)); err != nil {
		t.Fatalf("a good item was refused: %v", err)
	}
	if err := checkContract(t, req, 200, h, []byte(`{"id":1,"description":"d"}`)); err == nil {
		t.Fatal("an item without a name passed")
	}
	if err := checkContract(t, req, 418, h, []byte(`{}`)); err == nil {
		t.Fatal("an undocumented status passed")
	}
}
