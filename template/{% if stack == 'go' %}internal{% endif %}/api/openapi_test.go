package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The committed openapi.yaml is the API's source: clients are generated from
// it, and `make openapi-check` runs TestHandlersAnswerAsOpenAPISays to hold
// the handlers to it. When they disagree, fix the handler, or change the
// document on purpose (`make contract-diff` says whether that breaks clients).
const document = "../../openapi.yaml"

// exchange is one request to the real handlers, with the storage it meets.
type exchange struct {
	method, target, contentType, body string
	items                             *fakeItems
	shuttingDown                      bool
}

// exchanges make the handlers answer every status the document lists for
// every operation (the test fails when one is missing), plus the answers of
// no operation that components.responses documents.
func exchanges() []exchange {
	down := func() *fakeItems { return &fakeItems{err: errors.New("connection refused")} }
	stocked := func() *fakeItems {
		items := &fakeItems{}
		for _, name := range []string{"first", "second", "third"} {
			description := "about " + name
			_, _ = items.Create(context.Background(), name, &description)
		}
		_, _ = items.Create(context.Background(), "no description", nil)
		return items
	}
	big := `{"name": "x", "description": "` + strings.Repeat("d", MaxBodyBytes) + `"}`
	var out []exchange
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		out = append(out,
			exchange{method: method, target: "/healthz"},
			exchange{method: method, target: "/readyz"},
			exchange{method: method, target: "/readyz", items: down()},
			exchange{method: method, target: "/readyz", shuttingDown: true},
			exchange{method: method, target: "/metrics"},
			exchange{method: method, target: "/items"},
			exchange{method: method, target: "/items?limit=2", items: stocked()},
			exchange{method: method, target: "/items?limit=0"},
			exchange{method: method, target: "/items?cursor=not-issued"},
			exchange{method: method, target: "/items", items: down()},
			exchange{method: method, target: "/items/1", items: stocked()},
			exchange{method: method, target: "/items/4", items: stocked()},
			exchange{method: method, target: "/items/99"},
			exchange{method: method, target: "/items/0"},
			exchange{method: method, target: "/items/1", items: down()},
			exchange{method: method, target: "/no/such/path"},
		)
	}
	return append(out,
		exchange{method: "POST", target: "/items", contentType: "application/json", body: `{"name": " Widget ", "description": "d"}`},
		exchange{method: "POST", target: "/items", contentType: "application/json", body: `{"name": "Widget", "description": null}`},
		exchange{method: "POST", target: "/items", contentType: "application/json", body: `{"name": `},
		exchange{method: "POST", target: "/items", contentType: "application/json", body: big},
		exchange{method: "POST", target: "/items", contentType: "text/plain", body: `{"name": "Widget"}`},
		exchange{method: "POST", target: "/items", contentType: "application/json", body: `{"name": "", "colour": 1}`},
		exchange{method: "POST", target: "/items", contentType: "application/json", body: `{"name": "Widget"}`, items: down()},
		exchange{method: "DELETE", target: "/items"},
		exchange{method: "PUT", target: "/healthz"},
	)
}

func TestHandlersAnswerAsOpenAPISays(t *testing.T) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(document)
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	answered := map[string]bool{} // "GET /items 200"
	for _, ex := range exchanges() {
		name := ex.method + " " + ex.target
		items := ex.items
		if items == nil {
			items = &fakeItems{}
		}
		a, _ := newAPI(items)
		if ex.shuttingDown {
			a.life.BeginShutdown()
			name += " (shutting down)"
		}
		req := httptest.NewRequest(ex.method, ex.target, strings.NewReader(ex.body))
		if ex.contentType != "" {
			req.Header.Set("Content-Type", ex.contentType)
		}
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)

		route, params, err := router.FindRoute(httptest.NewRequest(ex.method, ex.target, nil))
		if err != nil {
			if problem := checkUnrouted(doc, rec); problem != "" {
				t.Errorf("%s: %s", name, problem)
			}
			continue
		}
		key := fmt.Sprintf("%s %s %d", ex.method, route.Path, rec.Code)
		answered[key] = true
		if problem := checkAnswer(ctx, route, params, ex, rec); problem != "" {
			t.Errorf("%s answered %d: %s", name, rec.Code, problem)
		}
	}

	// every status the document promises is one the handlers really give
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				key := fmt.Sprintf("%s %s %s", method, path, status)
				if !answered[key] {
					t.Errorf("openapi.yaml documents %s (%s), but no exchange here produces it: add one", key, op.OperationID)
				}
			}
		}
	}
}

// checkAnswer holds one answer to its operation's documented responses
// (status, headers, body); a request that succeeded must also have been one
// the document accepts.
func checkAnswer(ctx context.Context, route *routers.Route, params map[string]string, ex exchange, rec *httptest.ResponseRecorder) string {
	responses := route.Operation.Responses
	if responses.Status(rec.Code) == nil {
		return fmt.Sprintf("openapi.yaml documents no %d for %s %s (%s); it lists %s",
			rec.Code, route.Method, route.Path, route.Operation.OperationID, strings.Join(slices.Sorted(maps.Keys(responses.Map())), ", "))
	}
	req := httptest.NewRequest(ex.method, ex.target, strings.NewReader(ex.body))
	if ex.contentType != "" {
		req.Header.Set("Content-Type", ex.contentType)
	}
	input := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{MultiError: true},
	}
	if rec.Code < 300 {
		if err := openapi3filter.ValidateRequest(ctx, input); err != nil {
			return "the handler accepted a request openapi.yaml refuses: " + brief(err)
		}
	}
	err := openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		return "the answer differs from openapi.yaml: " + brief(err)
	}
	return ""
}

// checkUnrouted holds an answer to a path or method no operation has to
// components.responses: 404 NotFound, 405 MethodNotAllowed.
func checkUnrouted(doc *openapi3.T, rec *httptest.ResponseRecorder) string {
	name := map[int]string{http.StatusNotFound: "NotFound", http.StatusMethodNotAllowed: "MethodNotAllowed"}[rec.Code]
	ref := doc.Components.Responses[name]
	if name == "" || ref == nil || ref.Value == nil {
		return fmt.Sprintf("answered %d, which openapi.yaml documents neither for an operation nor in components.responses", rec.Code)
	}
	media := ref.Value.Content.Get(rec.Header().Get("Content-Type"))
	if media == nil || media.Schema == nil {
		return fmt.Sprintf("Content-Type %q is not the one components.responses.%s documents", rec.Header().Get("Content-Type"), name)
	}
	var body any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		return "the body is not JSON: " + err.Error()
	}
	if err := media.Schema.Value.VisitJSON(body, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return fmt.Sprintf("the body differs from components.responses.%s: %s", name, brief(err))
	}
	for header := range ref.Value.Headers {
		if rec.Header().Get(header) == "" {
			return fmt.Sprintf("no %s header, which components.responses.%s documents", header, name)
		}
	}
	return ""
}

// brief keeps the validator's findings and drops its dumps of the schema and
// the value (indented lines after "Schema:" and "Value:").
func brief(err error) string {
	var kept []string
	for _, line := range strings.Split(err.Error(), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed == "Schema:" || trimmed == "Value:" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		kept = append(kept, line)
	}
	return strings.Join(kept, "; ")
}
