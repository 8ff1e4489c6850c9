package provider

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"text/template"
)

//go:embed templates/*.Dockerfile.tmpl
var templates embed.FS

// image is a provider's built-in image recipe.
type image struct {
	agent   string // the agent's name in comments; "" for none
	tmpl    string // templates/<tmpl>.Dockerfile.tmpl defines "agent"
	version string
	// sha512 (hex) of the agent's npm package for linux/amd64 and arm64.
	sha512Amd64, sha512Arm64 string
	env                      []string // ENV lines, KEY=VALUE, no secrets
	cmd                      []string // default command outside a bottle
}

// BuildArgs the built-in Dockerfiles take; all have defaults in the file.
const (
	// BuildArgBaseImage replaces the pinned base image (tests use a base
	// made locally; a user may use a mirror). It must be Debian-based.
	BuildArgBaseImage = "BASE_IMAGE"
	// BuildArgNPMRegistry points the agent's download at an npm mirror.
	BuildArgNPMRegistry = "NPM_REGISTRY"
)

// Dockerfile renders the provider's built-in Dockerfile. It needs no build
// context and no build argument.
func (p Provider) Dockerfile() ([]byte, error) {
	t, err := template.New("").ParseFS(templates, "templates/base.Dockerfile.tmpl", "templates/"+p.image.tmpl+".Dockerfile.tmpl")
	if err != nil {
		return nil, fmt.Errorf("provider %s: Dockerfile template: %w", p.Name, err)
	}
	cmd, err := json.Marshal(p.image.cmd)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = t.ExecuteTemplate(&b, "base", map[string]any{
		"Name":        p.Name,
		"Agent":       p.image.agent,
		"BaseImage":   BaseImage,
		"Registry":    NPMRegistry,
		"Version":     p.image.version,
		"SHA512Amd64": p.image.sha512Amd64,
		"SHA512Arm64": p.image.sha512Arm64,
		"UID":         AgentUID,
		"Env":         p.image.env,
		"Cmd":         string(cmd),
	})
	if err != nil {
		return nil, fmt.Errorf("provider %s: rendering the Dockerfile: %w", p.Name, err)
	}
	return b.Bytes(), nil
}
