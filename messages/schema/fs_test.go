package schema_test

import (
	"encoding/json"
	"io/fs"
	"slices"
	"testing"

	"github.com/payworker/payworker/messages/schema"
)

// schemaIDs maps each schema file to its $id.
var schemaIDs = map[string]string{
	"charge-request.schema.json":  "https://payworker.dev/schema/charge-request.json",
	"charge-result.schema.json":   "https://payworker.dev/schema/charge-result.json",
	"session-request.schema.json": "https://payworker.dev/schema/session-request.json",
	"session-result.schema.json":  "https://payworker.dev/schema/session-result.json",
}

// TestFSFiles checks, with the standard library only, that FS holds exactly
// the four schema files and that each names itself properly.
func TestFSFiles(t *testing.T) {
	names, err := fs.Glob(schema.FS, "*")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for name := range schemaIDs {
		want = append(want, name)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("FS holds %q, want %q", names, want)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(schema.FS, name)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatalf("not a JSON object: %v", err)
			}
			checks := []struct{ key, want string }{
				{"$schema", "https://json-schema.org/draft/2020-12/schema"},
				{"$id", schemaIDs[name]},
				{"type", "object"},
			}
			for _, c := range checks {
				if got := doc[c.key]; got != c.want {
					t.Errorf("%s = %v, want %q", c.key, got, c.want)
				}
			}
			for _, key := range []string{"title", "description"} {
				if s, _ := doc[key].(string); s == "" {
					t.Errorf("%s is missing", key)
				}
			}
		})
	}
}
