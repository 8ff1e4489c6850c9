package bottles

import (
	"context"
	"os"

	"github.com/docker-bottle/docker-bottle/image"
	"github.com/docker-bottle/docker-bottle/image/build"
	"github.com/docker-bottle/docker-bottle/image/layer"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/spec"
)

// AgentImage says which agent image a run or a build makes: agent.image
// as it is, agent.dockerfile built from its context, else the provider's
// built-in Dockerfile.
type AgentImage struct {
	Spec     spec.Spec
	Provider provider.Provider
	// Base is the folder the spec's relative paths start from (spec.Base).
	Base string
	// Workspace names the image built from agent.dockerfile.
	Workspace string
}

// CheckAgentImage refuses an agent image a run could not make: the
// provider's in-guest files from the spec, agent.image missing from the
// engine, agent.dockerfile or its context missing. A run would find out
// only after bringing the bundle up.
func (s *Service) CheckAgentImage(ctx context.Context, a AgentImage) error {
	if _, err := a.Provider.BottleFiles(a.Spec); err != nil {
		return err
	}
	switch {
	case a.Spec.Agent.Image != "":
		return image.CheckImage(ctx, s.engine, a.Spec.Agent.Image)
	case a.Spec.Agent.Dockerfile != "":
		return a.Spec.CheckAgentDockerfile(a.Base)
	}
	return nil
}

// WithAgentImage returns o with the image request of a (and the registry
// to push to) and the provider's in-guest files; done releases what it
// made.
func (s *Service) WithAgentImage(a AgentImage, o RunOptions) (_ RunOptions, done func(), _ error) {
	req, done, err := imageRequest(a)
	if err != nil {
		return o, nil, err
	}
	req.Registry = a.Spec.Registry
	files, err := a.Provider.BottleFiles(a.Spec)
	if err != nil {
		done()
		return o, nil, err
	}
	o.Image = req
	for _, f := range files {
		o.Files = append(o.Files, layer.File{Path: f.Path, Content: f.Content, Mode: f.Mode})
	}
	return o, done, nil
}

// imageRequest says how the agent image is made.
func imageRequest(a AgentImage) (image.Request, func(), error) {
	ag := a.Spec.Agent
	noop := func() {}
	if ag.Image != "" {
		return image.Request{Image: ag.Image}, noop, nil
	}
	if ag.Dockerfile != "" {
		dockerfile, ctxDir := a.Spec.AgentDockerfile(a.Base)
		return image.Request{Build: &build.Options{ContextDir: ctxDir, Dockerfile: dockerfile, BuildArgs: ag.BuildArgs,
			Target: ag.Target, Tag: "docker-bottle/build:" + plan.SlugFromDir(a.Workspace)}}, noop, nil
	}
	content, err := a.Provider.Dockerfile()
	if err != nil {
		return image.Request{}, noop, err
	}
	// The built-in Dockerfiles need no context: give them an empty one.
	dir, err := os.MkdirTemp("", "docker-bottle-context-")
	if err != nil {
		return image.Request{}, noop, err
	}
	return image.Request{Build: &build.Options{ContextDir: dir, DockerfileContent: content,
		Tag: "docker-bottle/" + a.Provider.Name + ":builtin", BuildArgs: ag.BuildArgs}}, func() { _ = os.RemoveAll(dir) }, nil
}
