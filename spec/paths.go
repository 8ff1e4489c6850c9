package spec

import (
	"fmt"
	"os"
	"path/filepath"
)

// Base is the folder a spec's relative paths start from: the folder of
// the spec file at specPath, or dir when there is no spec file.
func Base(specPath, dir string) string {
	if specPath == "" {
		return dir
	}
	if abs, err := filepath.Abs(specPath); err == nil {
		return filepath.Dir(abs)
	}
	return filepath.Dir(specPath)
}

// rel is p relative to base (p as it is when absolute).
func rel(base, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// AgentDockerfile is agent.dockerfile and its build context (default: the
// spec's folder), both relative to base (see Base).
func (s Spec) AgentDockerfile(base string) (dockerfile, contextDir string) {
	contextDir = s.Agent.Context
	if contextDir == "" {
		contextDir = "."
	}
	return rel(base, s.Agent.Dockerfile), rel(base, contextDir)
}

// CheckAgentDockerfile refuses an agent.dockerfile that is not a file or
// an agent.context that is not a folder, relative to base.
func (s Spec) CheckAgentDockerfile(base string) error {
	dockerfile, contextDir := s.AgentDockerfile(base)
	if st, err := os.Stat(dockerfile); err != nil || st.IsDir() {
		return fmt.Errorf("agent.dockerfile %s: %s is not a file: give the path of the agent's Dockerfile, relative to the spec file",
			s.Agent.Dockerfile, dockerfile)
	}
	if st, err := os.Stat(contextDir); err != nil || !st.IsDir() {
		return fmt.Errorf("agent.context %s: %s is not a directory: give the build context of the agent's Dockerfile, relative to the spec file",
			s.Agent.Context, contextDir)
	}
	return nil
}

// Prompt is agent.prompt, else the content of agent.prompt_file relative
// to base; "" when the spec has neither.
func (s Spec) Prompt(base string) (string, error) {
	switch {
	case s.Agent.Prompt != "":
		return s.Agent.Prompt, nil
	case s.Agent.PromptFile != "":
		data, err := os.ReadFile(rel(base, s.Agent.PromptFile))
		if err != nil {
			return "", fmt.Errorf("reading agent.prompt_file: %w", err)
		}
		return string(data), nil
	}
	return "", nil
}

// ExtraCAFile is egress.extra_ca made absolute (relative to base), checked
// to exist; "" when the spec names none.
func (s Spec) ExtraCAFile(base string) (string, error) {
	f := s.Egress.ExtraCA
	if f == "" {
		return "", nil
	}
	f = rel(base, f)
	if _, err := os.Stat(f); err != nil {
		return "", fmt.Errorf("egress.extra_ca: %w", err)
	}
	return filepath.Abs(f)
}
