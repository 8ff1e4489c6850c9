package plugin

import (
	"fmt"
	"io"
	"text/template"

	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/cli/templates"
)

// --format takes what docker's own commands take, rendered by docker's
// formatter with docker's template functions (json, join, upper, pad,
// truncate, ...): "table" is the command's default table, "table TEMPLATE"
// a table with headers, "json" one JSON object a line, and any other Go
// template one line per row, without headers.

// listFormat is the formatter's Format for --format: "" and "table" are
// the command's default table.
func listFormat(format, defaultTable string) formatter.Format {
	if format == "" || format == formatter.TableFormatKey {
		return formatter.Format(defaultTable)
	}
	return formatter.Format(format)
}

// writeList renders rows in format, with the headers of fields for a
// table (also when there are no rows, as `docker ps` does).
func writeList[T formatter.SubContext](out io.Writer, format formatter.Format, fields formatter.SubContext, rows []T) error {
	c := formatter.Context{Output: out, Format: format}
	err := c.Write(fields, func(write func(formatter.SubContext) error) error {
		for _, r := range rows {
			if err := write(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("--format %q: %w", format, err)
	}
	return nil
}

// objectFormat parses --format for a command that prints one result (a
// report, a spec), as `docker info --format` takes it: nil for the
// command's own text (defaultFormat), "json" for one JSON object on a
// line, any other format a Go template. It is parsed before the command
// does its work, so a mistyped template costs nothing.
func objectFormat(format, defaultFormat string) (*template.Template, error) {
	switch format {
	case defaultFormat:
		return nil, nil
	case formatter.JSONFormatKey:
		format = formatter.JSONFormat
	}
	tmpl, err := templates.Parse(format)
	if err != nil {
		return nil, fmt.Errorf("--format %q: template parsing error: %w", format, err)
	}
	return tmpl, nil
}

// writeObject prints v with tmpl, or with text when tmpl is nil.
func writeObject(out io.Writer, tmpl *template.Template, v any, text func(io.Writer) error) error {
	if tmpl == nil {
		return text(out)
	}
	if err := tmpl.Execute(out, v); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	_, err := fmt.Fprintln(out)
	return err
}

// formatUsage is the --format flag's help, as docker's list commands
// word it, with the fields a template can use.
func formatUsage(fields string) string {
	return "Format output using a custom template:\n" +
		"'table':            Print output in table format with column headers (default)\n" +
		"'table TEMPLATE':   Print output in table format using the given Go template\n" +
		"'json':             Print in JSON format\n" +
		"'TEMPLATE':         Print output using the given Go template.\n" +
		"Fields: " + fields
}

// objectFormatUsage is the --format flag's help for a command that prints
// one result; def is its default format, which prints what.
func objectFormatUsage(def, what string) string {
	s := "Format output using a custom template:\n"
	if def != "" {
		s += "'" + def + "': Print " + what + " (default)\n"
	}
	return s + "'json': Print in JSON format\n" +
		"'TEMPLATE': Print output using the given Go template"
}
