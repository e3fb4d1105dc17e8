package api

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
)

// The OpenAPI document is kept in parts: openapi/base.json holds the
// document's frame (info, security schemes, shared components) and every
// other openapi/*.json file one area's "paths" and "components". Document
// merges them, so an area adds its routes by adding a file; a path or
// component defined twice is an error.
//
//go:embed openapi/*.json
var docFiles embed.FS

// Document returns the merged OpenAPI 3.1 document as JSON.
func Document() ([]byte, error) {
	base, err := docFiles.ReadFile("openapi/base.json")
	if err != nil {
		return nil, fmt.Errorf("api: openapi/base.json: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		return nil, fmt.Errorf("api: openapi/base.json: %w", err)
	}
	names, err := fs.Glob(docFiles, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "openapi/base.json" {
			continue
		}
		b, err := docFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var part map[string]any
		if err := json.Unmarshal(b, &part); err != nil {
			return nil, fmt.Errorf("api: %s: %w", name, err)
		}
		for k := range part {
			if k != "paths" && k != "components" && k != "tags" {
				return nil, fmt.Errorf("api: %s: only paths, components and tags may be in a part, not %q", name, k)
			}
		}
		if err := mergeInto(doc, part, name, 0); err != nil {
			return nil, err
		}
	}
	addCommonResponses(doc)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// mergeInto adds src's members to dst: objects down to depth 2 (paths →
// path, components → kind → name) are merged, tags appended, and anything
// else defined twice is an error naming file.
func mergeInto(dst, src map[string]any, file string, depth int) error {
	for k, v := range src {
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		if ol, ok := old.([]any); ok && k == "tags" && depth == 0 {
			nl, _ := v.([]any)
			dst[k] = append(ol, nl...)
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 || depth >= 2 || (k != "paths" && k != "components" && depth == 0) {
			return fmt.Errorf("api: %s defines %q again", file, k)
		}
		if k == "paths" || depth == 1 {
			// paths' entries and components' names must be new.
			for name, item := range nm {
				if _, dup := om[name]; dup {
					return fmt.Errorf("api: %s defines %s %q again", file, k, name)
				}
				om[name] = item
			}
			continue
		}
		if err := mergeInto(om, nm, file, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// addCommonResponses documents, on every authenticated operation, the
// answers any of them may give whatever it does: 401 (no valid
// credential), 429 (rate limited) and, on those that change state, 403
// (a cookie request from another site). A part may still describe them
// itself.
func addCommonResponses(doc map[string]any) {
	paths, _ := doc["paths"].(map[string]any)
	for _, item := range paths {
		ops, _ := item.(map[string]any)
		for method, op := range ops {
			o, ok := op.(map[string]any)
			if !ok || method == "parameters" {
				continue
			}
			if sec, ok := o["security"].([]any); ok && len(sec) == 0 {
				continue // public
			}
			resps, _ := o["responses"].(map[string]any)
			if resps == nil {
				continue
			}
			add := map[string]string{"401": "Unauthorized", "429": "RateLimited"}
			if method != "get" && method != "head" {
				add["403"] = "Forbidden"
			}
			for code, name := range add {
				if _, ok := resps[code]; !ok {
					resps[code] = map[string]any{"$ref": "#/components/responses/" + name}
				}
			}
		}
	}
}
