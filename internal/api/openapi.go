package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"go.yaml.in/yaml/v3"
)

// openAPIYAML is the hand-written OpenAPI 3.1 document of the API. It is
// written in YAML for people and served as JSON for tools.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// openAPIJSON converts the document once, on first use. It can only fail if
// the embedded file is broken, which the tests catch.
var openAPIJSON = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	return json.MarshalIndent(jsonCompatible(doc), "", "  ")
})

// jsonCompatible turns the maps YAML decodes into maps JSON can encode: YAML
// allows keys that are not strings (an unquoted response code such as 200
// is an integer key).
func jsonCompatible(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonCompatible(e)
		}
		return v
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = jsonCompatible(e)
		}
		return out
	case []any:
		for i, e := range v {
			v[i] = jsonCompatible(e)
		}
		return v
	}
	return v
}

// handleOpenAPI serves GET /openapi.json.
func (s *server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	doc, err := openAPIJSON()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(doc)
	return nil
}
