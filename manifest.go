// Package bottle holds what describes the plugin itself: its metadata, read
// from manifest.json, the single source for docker-cli-plugin-metadata.
package bottle

import (
	_ "embed"
	"encoding/json"

	"github.com/docker/cli/cli-plugins/metadata"
)

//go:embed manifest.json
var manifestJSON []byte

// Version and Commit are stamped by the Makefile (-ldflags -X); Version falls
// back to manifest.json.
var (
	Version = ""
	Commit  = "unknown"
)

// Metadata returns the plugin metadata from manifest.json, with the version
// replaced by the stamped one when the build set it.
func Metadata() metadata.Metadata {
	var m metadata.Metadata
	if err := json.Unmarshal(manifestJSON, &m); err != nil {
		// manifest.json is embedded at build time; a test guards its shape.
		panic("manifest.json: " + err.Error())
	}
	if Version != "" {
		m.Version = Version
	}
	return m
}
