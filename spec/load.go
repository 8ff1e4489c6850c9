package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Error is a problem in a spec file, located at File:Line:Col.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors is every problem found in one file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Load reads and validates a spec file. Defaults are not applied: call
// Resolve for that.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading bottle spec: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates spec data; name is used in error locations.
func Parse(name string, data []byte) (*Spec, error) {
	var s Spec
	if len(bytes.TrimSpace(data)) == 0 {
		return &s, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.Strict(), yaml.DisallowUnknownField())
	if err := dec.Decode(&s); err != nil {
		return nil, decodeError(name, err)
	}
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: name, Msg: "holds more than one YAML document; a bottle spec is one document"}
	}
	problems := s.validate()
	if len(problems) == 0 {
		return &s, nil
	}
	file, _ := parser.ParseBytes(data, 0)
	errs := make(Errors, 0, len(problems))
	for _, p := range problems {
		e := &Error{File: name, Msg: p.msg}
		e.Line, e.Col = locate(file, p.path)
		errs = append(errs, e)
	}
	return nil, errs
}

// decodeError turns a YAML library error into one located line naming what
// is expected.
func decodeError(name string, err error) error {
	var yerr yaml.Error
	if !errors.As(err, &yerr) || yerr.GetToken() == nil {
		return &Error{File: name, Msg: err.Error()}
	}
	pos := yerr.GetToken().Position
	msg := yerr.GetMessage()
	var unknown *yaml.UnknownFieldError
	var typ *yaml.TypeError
	switch {
	case errors.As(err, &unknown):
		msg += ` (README, "bottle.yaml", lists the fields)`
	case errors.As(err, &typ):
		msg = fmt.Sprintf("expected %s, got %q", describeType(typ), yerr.GetToken().Value)
	}
	return &Error{File: name, Line: pos.Line, Col: pos.Column, Msg: msg}
}

func describeType(t *yaml.TypeError) string {
	if t.DstType == nil {
		return "another type"
	}
	switch t.DstType.Kind().String() {
	case "slice":
		return "a list"
	case "map":
		return "a mapping of names to strings"
	case "struct", "ptr":
		return "a mapping"
	case "bool":
		return "true or false"
	case "int", "int64":
		return "a whole number"
	default:
		return "a " + t.DstType.Kind().String()
	}
}

// locate finds the position of the node at a path such as
// "$.egress.allow[0].host"; the key's position is used for mapping values,
// so errors point at the line a user reads.
func locate(file *ast.File, path string) (line, col int) {
	if file == nil || path == "" {
		return 0, 0
	}
	for p := path; p != ""; p = parent(p) {
		yp, err := yaml.PathString(p)
		if err != nil {
			continue
		}
		node, err := yp.FilterFile(file)
		if err != nil || node == nil {
			continue
		}
		tk := node.GetToken()
		if tk == nil || tk.Position == nil {
			continue
		}
		return tk.Position.Line, tk.Position.Column
	}
	return 0, 0
}

// parent drops the last element of a YAML path.
func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 1 {
		return ""
	}
	return p[:i]
}
