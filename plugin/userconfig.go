package plugin

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/docker-bottle/docker-bottle/agentconf"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/spec"
)

// userConfig collects the user's agent settings a bottle of ls carries
// (agent.user_config), refusing them whole when a carried file holds a
// credential. Local MCP servers are not checked against the image here
// (it may not be built yet): the bottle's bootstrap drops those whose
// command is missing, Claude Code's and Codex's alike.
func userConfig(ls loadedSpec) (*agentconf.Snapshot, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return &agentconf.Snapshot{}, nil
	}
	var bottle []byte
	if ls.provider.Name == spec.ProviderClaude {
		if bottle, err = provider.ClaudeSettings(ls.spec.Supervise); err != nil {
			return nil, err
		}
	}
	values, err := bringup.SecretValues(ls.spec.Egress.Secrets, nil)
	if err != nil {
		return nil, err
	}
	var secrets []agentconf.Secret
	for _, name := range slices.Sorted(maps.Keys(values)) {
		secrets = append(secrets, agentconf.Secret{Name: name, Value: values[name]})
	}
	// Where the agents themselves look when the user moved their folder.
	configDir := map[string]string{spec.ProviderClaude: "CLAUDE_CONFIG_DIR", spec.ProviderCodex: "CODEX_HOME"}[ls.provider.Name]
	return agentconf.Collect(agentconf.Options{
		Home: home, ConfigDir: os.Getenv(configDir), Provider: ls.provider.Name, Setting: ls.spec.Agent.UserConfig,
		BottleSettings: bottle, ReservedEnv: slices.Collect(maps.Keys(ls.spec.Agent.Env)), Secrets: secrets,
	})
}

// userConfigTar is the snapshot a run leaves for the bottle (nil: none),
// with a line on w saying what it carries.
func userConfigTar(ls loadedSpec, w io.Writer) ([]byte, error) {
	snap, err := userConfig(ls)
	if err != nil {
		return nil, err
	}
	if len(snap.Files) > 0 {
		left := ""
		if n := len(snap.LeftOut); n > 0 {
			left = fmt.Sprintf(", %d left out", n)
		}
		fmt.Fprintf(w, "Carrying %d files of your agent settings into the bottle%s (`docker bottle config` says which and why; --no-user-config carries none)\n", len(snap.Files), left)
	}
	for _, m := range snap.UnreachableMCP(ls.spec.Egress.Allows) {
		fmt.Fprintf(w, "MCP server %s (%s) is carried, but the egress rules do not allow %s:%d: add it to egress.allow to use it\n", m.Name, m.File, m.Host, m.Port)
	}
	return snap.Tar()
}

// userConfigReport is what `config` says of the user's agent settings: what
// a bottle carries, what it leaves out and why, and its MCP servers.
type userConfigReport struct {
	Files   []agentconf.File
	LeftOut []agentconf.LeftOut
	// MCPServers say, each, whether it is carried and why; a carried
	// remote server whose host the egress rules do not allow says that.
	MCPServers []agentconf.MCPServer
	// NotAllowed are the hosts (host:port) of those servers.
	NotAllowed []string
	// Refused says why nothing is carried: a carried file holds a secret.
	Refused string `json:",omitempty"`
}

// userConfigReportOf collects the report for ls. A secret in a carried
// file gives a report saying so, with the error.
func userConfigReportOf(ls loadedSpec) (*userConfigReport, error) {
	snap, err := userConfig(ls)
	var se *agentconf.SecretError
	if errors.As(err, &se) {
		return &userConfigReport{Files: []agentconf.File{}, Refused: se.Error()}, err
	}
	if err != nil {
		return nil, err
	}
	r := &userConfigReport{Files: snap.Files, LeftOut: snap.LeftOut, MCPServers: snap.MCPServers}
	unreachable := snap.UnreachableMCP(ls.spec.Egress.Allows)
	for i, m := range r.MCPServers {
		if slices.ContainsFunc(unreachable, func(u agentconf.MCPServer) bool { return u.Name == m.Name && u.File == m.File }) {
			r.MCPServers[i].Note = fmt.Sprintf("the egress rules do not allow %s:%d: add it to egress.allow to use it", m.Host, m.Port)
			if hp := fmt.Sprintf("%s:%d", m.Host, m.Port); !slices.Contains(r.NotAllowed, hp) {
				r.NotAllowed = append(r.NotAllowed, hp)
			}
		}
	}
	return r, nil
}

// writeText writes the report as YAML comments, so that config's output
// still reads back as a spec.
func (r *userConfigReport) writeText(w io.Writer) {
	if r.Refused != "" {
		fmt.Fprintf(w, "# agent.user_config: nothing can be carried: %s\n", r.Refused)
		return
	}
	fmt.Fprintf(w, "# agent.user_config: a bottle carries %d files of your agent settings\n", len(r.Files))
	for _, f := range r.Files {
		fmt.Fprintf(w, "#   %s -> ~/%s (%d bytes)\n", f.Source, f.Path, f.Size)
	}
	for _, m := range r.MCPServers {
		state := "carried"
		if !m.Carried {
			state = "skipped"
		}
		fmt.Fprintf(w, "# MCP server %s (%s, %s): %s: %s\n", m.Name, m.Transport, m.File, state, m.Note)
	}
	for _, l := range r.LeftOut {
		what := l.Path
		if l.Key != "" {
			what += " " + l.Key
		}
		fmt.Fprintf(w, "# left out: %s: %s\n", what, strings.ReplaceAll(l.Reason, "\n", " "))
	}
}
