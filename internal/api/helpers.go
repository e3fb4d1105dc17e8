package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 100
)

// pageParams reads limit and cursor from the query. The cursor is opaque
// to clients: base64url of "v1:" and the sort key of the last item of the
// previous page.
func pageParams(r *http.Request) (limit int, after string, err error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return 0, "", &Problem{Type: TypeInvalidBody, Title: "Bad Request", Status: http.StatusBadRequest,
			Detail: "The query string is malformed (a bad %-escape?): " + err.Error()}
	}
	limit = DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return 0, "", &Problem{Type: TypeValidation, Title: "Invalid request", Status: http.StatusUnprocessableEntity,
				Detail: "Some query parameters are invalid: see errors.",
				Errors: []FieldError{{Field: "limit", Detail: fmt.Sprintf("limit must be a whole number from 1 to %d.", MaxLimit)}}}
		}
		limit = n
	}
	if c := q.Get("cursor"); c != "" {
		after, err = decodeCursor(c)
		if err != nil {
			return 0, "", &Problem{Type: TypeInvalidCursor, Title: "Bad Request", Status: http.StatusBadRequest,
				Detail: "cursor is not one this API gave out: pass the `next` of the previous page unchanged, or leave it out for the first page."}
		}
	}
	return limit, after, nil
}

func encodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + key))
}

func decodeCursor(c string) (string, error) {
	if len(c) > 512 {
		return "", errors.New("cursor too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", err
	}
	key, ok := strings.CutPrefix(string(b), "v1:")
	if !ok || key == "" {
		return "", errors.New("not a v1 cursor")
	}
	return key, nil
}

// paginate returns the page of items (ordered by key, ascending, with
// unique keys) that follows the key after ("" for the first page), and
// the cursor of the next page ("" on the last).
func paginate[T any](items []T, key func(T) string, after string, limit int) ([]T, string) {
	start := 0
	if after != "" {
		start = len(items)
		for i, it := range items {
			if key(it) > after {
				start = i
				break
			}
		}
	}
	end := min(start+limit, len(items))
	page := items[start:end]
	next := ""
	if end < len(items) && len(page) > 0 {
		next = encodeCursor(key(page[len(page)-1]))
	}
	return page, next
}

// list is the shape of every list answer: {"items": [...], "next": "..."}.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

func newList[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items, Next: next}
}

// decode reads a JSON object body into v: unknown members, trailing data
// and anything that is not JSON are a 400 problem.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &Problem{Type: TypeInvalidBody, Title: "Unsupported Media Type", Status: http.StatusUnsupportedMediaType,
			Detail: "Send the body as JSON (Content-Type: application/json)."}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Problem{Type: TypeInvalidBody, Title: "Content Too Large", Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("The body is over %d bytes.", tooBig.Limit)}
		}
		if errors.Is(err, io.EOF) {
			return &Problem{Type: TypeInvalidBody, Title: "Bad Request", Status: http.StatusBadRequest, Detail: "The body is empty: send a JSON object."}
		}
		return &Problem{Type: TypeInvalidBody, Title: "Bad Request", Status: http.StatusBadRequest, Detail: "The body is not a valid JSON object for this route: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Problem{Type: TypeInvalidBody, Title: "Bad Request", Status: http.StatusBadRequest, Detail: "The body has data after its JSON object."}
	}
	return nil
}

// etag is a strong entity tag over the parts that make a resource's
// version.
func etag(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:12]) + `"`
}

// checkIfMatch holds an update to the version the client read: 428
// without If-Match, 412 when it names another version ("*" matches any).
func checkIfMatch(r *http.Request, current string) error {
	im := r.Header.Get("If-Match")
	if im == "" {
		return &Problem{Type: TypeETagRequired, Title: "Precondition Required", Status: http.StatusPreconditionRequired,
			Detail: "Send If-Match with the ETag you got when you read it, so that you do not overwrite someone else's change."}
	}
	for _, t := range strings.Split(im, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == current {
			return nil
		}
	}
	return preconditionFailed()
}

func preconditionFailed() *Problem {
	return &Problem{Type: TypeETagMismatch, Title: "Precondition Failed", Status: http.StatusPreconditionFailed,
		Detail: "It changed since you read it (If-Match does not match its ETag): read it again, then retry."}
}

// sortBy sorts items by key, ascending.
func sortBy[T any](items []T, key func(T) string) {
	sort.SliceStable(items, func(i, j int) bool { return key(items[i]) < key(items[j]) })
}
