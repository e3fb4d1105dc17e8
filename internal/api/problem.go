package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/parley/parley/internal/account"
)

// Problem is an RFC 9457 problem details object, the body of every error
// answer of the API (Content-Type application/problem+json).
type Problem struct {
	// Type names the kind of problem; "about:blank" when the status says
	// it all.
	Type string `json:"type"`
	// Title is a short summary of the kind of problem.
	Title string `json:"title"`
	// Status repeats the HTTP status code.
	Status int `json:"status"`
	// Detail says what went wrong with this request, and what to do.
	Detail string `json:"detail,omitempty"`
	// Errors lists, for a 422, what is wrong with each field.
	Errors []FieldError `json:"errors,omitempty"`
	// Expected is, for some 409s, the value the server expected.
	Expected *int `json:"expected,omitempty"`
}

// FieldError is one invalid field of a request body or query.
type FieldError struct {
	// Field is the member's name, e.g. "name".
	Field string `json:"field"`
	// Pointer is a JSON Pointer into the request body ("#/name"), or
	// empty for a query parameter.
	Pointer string `json:"pointer,omitempty"`
	// Detail says what is wrong and how to fix it.
	Detail string `json:"detail"`
}

func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

// Problem types beyond about:blank.
const (
	TypeValidation    = "urn:parley:problem:validation"
	TypeETagMismatch  = "urn:parley:problem:etag-mismatch"
	TypeETagRequired  = "urn:parley:problem:etag-required"
	TypeRateLimited   = "urn:parley:problem:rate-limited"
	TypeUnauthorized  = "urn:parley:problem:unauthorized"
	TypeCrossOrigin   = "urn:parley:problem:cross-origin"
	TypeInvalidBody   = "urn:parley:problem:invalid-body"
	TypeInvalidCursor = "urn:parley:problem:invalid-cursor"
)

// Errorf returns a problem of status with a detail for the user.
func Errorf(status int, format string, args ...any) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: fmt.Sprintf(format, args...)}
}

// Invalid returns a 422 problem for one field.
func Invalid(field, detail string) *Problem {
	return &Problem{Type: TypeValidation, Title: "Invalid request", Status: http.StatusUnprocessableEntity,
		Detail: "Some fields are invalid: see errors.", Errors: []FieldError{{Field: field, Pointer: "#/" + field, Detail: detail}}}
}

// WriteProblem sends p.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}

// fail turns any error a handler returns into a problem answer: a
// *Problem as it is, the account service's errors by their kind, and
// anything else as a logged 500 that says nothing of its cause.
func fail(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	var p *Problem
	var ve *account.ValidationError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &ve):
		p = &Problem{Type: TypeValidation, Title: "Invalid request", Status: http.StatusUnprocessableEntity, Detail: "Some fields are invalid: see errors."}
		keys := make([]string, 0, len(ve.Fields))
		for k := range ve.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p.Errors = append(p.Errors, FieldError{Field: k, Pointer: "#/" + k, Detail: ve.Fields[k]})
		}
	case errors.Is(err, account.ErrNotFound):
		p = Errorf(http.StatusNotFound, "Not found: it does not exist, or it was deleted.")
	case errors.Is(err, account.ErrForbidden):
		p = Errorf(http.StatusForbidden, "You may not do this: only members (or, for some changes, the owner) may.")
	case errors.Is(err, account.ErrUnauthenticated):
		p = unauthorized("Your credentials are not valid: log in again, or use a valid token or API key.")
	default:
		log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		p = Errorf(http.StatusInternalServerError, "The server could not finish this request. Try again; if it keeps happening, tell the server's operator.")
	}
	WriteProblem(w, p)
}

func unauthorized(detail string) *Problem {
	return &Problem{Type: TypeUnauthorized, Title: "Unauthorized", Status: http.StatusUnauthorized, Detail: detail}
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
