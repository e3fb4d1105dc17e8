// Package apitest checks answers of the /api/v1 routes against the API's
// OpenAPI 3.1 document with kin-openapi, for the tests of every area of
// the API: each response a test gets goes through Check (or Do).
//
// kin-openapi (v0.153.0) loads OpenAPI 3.1 documents, and its
// openapi3filter.ValidateResponse validates bodies with its JSON Schema
// 2020-12 validator whenever the document says "openapi": "3.1.x" (it
// adds openapi3.EnableJSONSchema2020 itself). Check also passes
// IncludeResponseStatus, so a status the document does not list for the
// operation fails the test, and requires every answer with a body to
// carry a documented Content-Type.
package apitest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/parley/parley/internal/api"
)

var (
	loadOnce sync.Once
	loaded   *openapi3.T
	loadErr  error
	routerMu sync.Mutex
	routerOf = map[*openapi3.T]routers.Router{}
)

// Load returns the API's OpenAPI document, loaded and validated (as an
// OpenAPI 3.1 document) once per test binary.
func Load(t testing.TB) *openapi3.T {
	t.Helper()
	loadOnce.Do(func() {
		b, err := api.Document()
		if err != nil {
			loadErr = err
			return
		}
		l := openapi3.NewLoader()
		doc, err := l.LoadFromData(b)
		if err != nil {
			loadErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			loadErr = err
			return
		}
		loaded = doc
	})
	if loadErr != nil {
		t.Fatalf("the OpenAPI document does not load: %v", loadErr)
	}
	return loaded
}

func router(t testing.TB, doc *openapi3.T) routers.Router {
	t.Helper()
	routerMu.Lock()
	defer routerMu.Unlock()
	if r := routerOf[doc]; r != nil {
		return r
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("OpenAPI router: %v", err)
	}
	routerOf[doc] = r
	return r
}

// Check reads resp's body (closing it) and fails the test unless the
// answer to req is what doc says that operation answers: a documented
// status, Content-Type and headers, and a body matching the schema. The
// route itself must be in doc. It returns the body.
func Check(t testing.TB, doc *openapi3.T, req *http.Request, resp *http.Response) []byte {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	CheckBody(t, doc, req, resp.StatusCode, resp.Header, body)
	return body
}

// CheckBody is Check for an answer already read.
func CheckBody(t testing.TB, doc *openapi3.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	route, params, err := router(t, doc).FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s answered %d, which the OpenAPI document does not allow: %v\nbody: %.2000s", req.Method, req.URL.Path, status, err, body)
	}
}

// Do sends req with c and checks the answer (Check); it returns the
// response (its body already read) and the body.
func Do(t testing.TB, doc *openapi3.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body := Check(t, doc, req, resp)
	return resp, body
}
