package bootstrap

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/pelletier/go-toml/v2"
)

// maxUserConfig bounds what the bootstrap unpacks: the plugin carries at
// most 16 MiB of files (package agentconf); the rest is the tar's own.
const maxUserConfig = 32 << 20

// userConfigMarker, under HOME, records that the user's settings were
// copied: a restarted bottle keeps what the agent changed since.
const userConfigMarker = ".local/state/docker-bottle/user-config-copied"

// carriedFile is one file of the user's settings, by its path relative to
// the agent's home.
type carriedFile struct {
	content []byte
	mode    fs.FileMode
}

// copyUserConfig copies the snapshot of the user's agent settings (the tar
// at tarPath, in the read-only guest dir; none when it is absent) into
// home, at the bottle's first start only. It returns the snapshot's files
// by home-relative path, for the files the bootstrap writes over them (the
// prompt in Codex's AGENTS.md). The MCP servers whose command is not on
// PATH are left out (keepRunnableMCP).
func copyUserConfig(tarPath, home, pathEnv string, stderr io.Writer) (map[string]carriedFile, error) {
	if tarPath == "" {
		return nil, nil
	}
	f, err := os.Open(tarPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading your agent settings: %w", err)
	}
	files, err := readUserConfig(io.LimitReader(f, maxUserConfig+1))
	_ = f.Close() // read only
	if err != nil {
		return nil, fmt.Errorf("reading your agent settings from %s: %w", tarPath, err)
	}
	if home == "" {
		return nil, errors.New("HOME is not set: your agent settings are copied there")
	}
	root, err := os.OpenRoot(home)
	if err != nil {
		return nil, fmt.Errorf("opening the agent's home: %w", err)
	}
	defer func() { _ = root.Close() }() // an os.Root: closing it loses nothing
	if _, err := root.Stat(userConfigMarker); err == nil {
		return files, nil
	}
	for name, c := range files {
		c.content = keepRunnableMCP(name, c.content, pathEnv, stderr)
		files[name] = c
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		c := files[name]
		if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
			return nil, fmt.Errorf("copying your agent settings: %w", err)
		}
		if err := root.WriteFile(name, c.content, c.mode); err != nil {
			return nil, fmt.Errorf("copying your agent settings: %w", err)
		}
	}
	if err := root.MkdirAll(path.Dir(userConfigMarker), 0o700); err != nil {
		return nil, fmt.Errorf("recording that your agent settings were copied: %w", err)
	}
	if err := root.WriteFile(userConfigMarker, nil, 0o600); err != nil {
		return nil, fmt.Errorf("recording that your agent settings were copied: %w", err)
	}
	fmt.Fprintf(stderr, "docker bottle: copied %d files of your agent settings into %s\n", len(files), home)
	return files, nil
}

// readUserConfig reads the snapshot's tar: regular files with local paths
// only, modes without special bits.
func readUserConfig(r io.Reader) (map[string]carriedFile, error) {
	files := map[string]carriedFile{}
	tr := tar.NewReader(r)
	total := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(h.Name) || path.Clean(h.Name) != h.Name {
			return nil, fmt.Errorf("%q is not a file of an agent's home", h.Name)
		}
		if total += int(h.Size); h.Size < 0 || total > maxUserConfig {
			return nil, fmt.Errorf("more than %d bytes", maxUserConfig)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[h.Name] = carriedFile{content: b, mode: fs.FileMode(h.Mode & 0o755)}
	}
}

// mcpFiles are the carried files that configure MCP servers, by
// home-relative path: where the servers are in them, and how the file
// reads and writes.
var mcpFiles = map[string]mcpFile{
	".claude.json":       {key: "mcpServers", decode: decodeJSON, encode: encodeJSON},
	".codex/config.toml": {key: "mcp_servers", decode: decodeTOML, encode: toml.Marshal},
}

type mcpFile struct {
	key    string
	decode func([]byte) (map[string]any, error)
	encode func(any) ([]byte, error)
}

// keepRunnableMCP drops from a carried file that configures MCP servers
// (Claude Code's ~/.claude.json, Codex's config.toml) the local servers
// whose command is not on PATH, saying so: the plugin could not look into
// the image. Other files, and content that does not read as the file's
// format, are kept as they are.
func keepRunnableMCP(name string, content []byte, pathEnv string, stderr io.Writer) []byte {
	f, ok := mcpFiles[name]
	if !ok {
		return content
	}
	cfg, err := f.decode(content)
	if err != nil {
		return content
	}
	servers, _ := cfg[f.key].(map[string]any)
	dropped := false
	for _, server := range slices.Sorted(maps.Keys(servers)) {
		s, _ := servers[server].(map[string]any)
		command, _ := s["command"].(string)
		if command == "" || runnable(command, pathEnv) {
			continue
		}
		fmt.Fprintf(stderr, "docker bottle: MCP server %s skipped: %s is not in the agent image (install it there to use the server)\n", server, command)
		delete(servers, server)
		dropped = true
	}
	if !dropped {
		return content
	}
	out, err := f.encode(cfg)
	if err != nil {
		return content
	}
	return out
}

func decodeJSON(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	// Numbers stay as written, not float64.
	dec.UseNumber()
	var m map[string]any
	return m, dec.Decode(&m)
}

func encodeJSON(v any) ([]byte, error) {
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(v)
	return out.Bytes(), err
}

func decodeTOML(b []byte) (map[string]any, error) {
	var m map[string]any
	return m, toml.Unmarshal(b, &m)
}

// runnable reports whether command (a name looked up in PATH, or a path)
// is an executable file here.
func runnable(command, pathEnv string) bool {
	p, err := lookPath(command, pathEnv)
	if err != nil {
		return false
	}
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// withCarried is what the bootstrap writes at path (absolute) over a file
// of the user's settings: the user's content first, then the bottle's, so
// that the user's Codex AGENTS.md and the bottle's prompt both reach the
// agent.
func withCarried(path string, content []byte, home string, carried map[string]carriedFile) []byte {
	rel, err := filepath.Rel(home, path)
	if err != nil || home == "" {
		return content
	}
	user, ok := carried[filepath.ToSlash(rel)]
	if !ok {
		return content
	}
	return slices.Concat(bytes.TrimRight(user.content, "\n"), []byte("\n\n"), content)
}
