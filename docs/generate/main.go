// Command generate writes the reference documentation of every `docker
// bottle` command into docs/reference (Markdown and docs.docker.com YAML),
// from the cobra tree, with docker/cli-docs-tool as buildx and compose do.
// Run it with `make docs`; a test fails when the committed files are stale.
package main

import (
	"fmt"
	"os"

	"github.com/docker-bottle/docker-bottle/docs/generate/reference"
)

func main() {
	dir := "docs/reference"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := reference.Generate(dir); err != nil {
		fmt.Fprintln(os.Stderr, "generating the reference docs:", err)
		os.Exit(1)
	}
}
