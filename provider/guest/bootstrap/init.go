// Package bootstrap starts what runs in a bottle: the workspace bootstrap
// (the helper's init subcommand, Init), which clones the repository from
// the git gate and execs the agent, and Exec, which runs a command of
// `docker bottle exec` with the agent's network. Both read the bottle's
// token from its file and put it only into the proxy URLs of the process
// they exec, so it is in no recorded environment and on no command line.
package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/docker-bottle/docker-bottle/provider/guest"
)

// execFunc replaces the process with the agent, in dir.
type execFunc func(dir, path string, argv, env []string) error

func execAgent(dir, path string, argv, env []string) error {
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("entering the workspace: %w", err)
	}
	return syscall.Exec(path, argv, env)
}

// Init is the workspace bootstrap, run in the bottle as the agent's user:
//
//	bottle-bundle init --provider NAME --prompt-mode MODE --workspace DIR -- COMMAND [ARGS...]
//
// It clones the bottle's repository from the git gate onto the bottle's own
// disk (git reads the token through the credential helper of the guest
// env), checks out the bottle's branch, prepares the agent's home, applies
// the prompt file in the provider's mode, adds the token to the proxy URLs
// and execs the agent. Run again on the same disk (a restarted bottle), it
// keeps the workspace as it is.
func Init(ctx context.Context, args []string) error {
	return bootstrap(ctx, args, os.Environ(), os.Stderr, execAgent)
}

func bootstrap(ctx context.Context, args, environ []string, stderr io.Writer, execve execFunc) error {
	flags := flag.NewFlagSet("init", flag.ContinueOnError)
	flags.SetOutput(stderr)
	providerName := flags.String("provider", "", "agent provider (claude, codex, shell): prepares the agent's home")
	promptMode := flags.String("prompt-mode", guest.PromptNone, "how the agent gets the prompt file: "+strings.Join(guest.PromptModes(), ", "))
	workspace := flags.String("workspace", "/workspace", "where the repository is cloned")
	if err := flags.Parse(args); err != nil {
		return err
	}
	command := flags.Args()
	if len(command) == 0 || !filepath.IsAbs(*workspace) {
		return errors.New("usage: bottle-bundle init [--provider NAME] [--prompt-mode MODE] [--workspace /ABS/DIR] -- COMMAND [ARGS...]")
	}
	env := newEnv(environ)
	for _, k := range []string{guest.EnvGateURL, guest.EnvBranch, guest.EnvTokenFile} {
		if env.get(k) == "" {
			return fmt.Errorf("%s is not set: run the bootstrap in a bottle, whose environment sets it", k)
		}
	}
	token, err := readToken(env)
	if err != nil {
		return err
	}
	var prompt []byte
	if pf := env.get(guest.EnvPromptFile); pf != "" {
		if prompt, err = os.ReadFile(pf); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reading the prompt file: %w", err)
		}
	}
	launch, err := guest.Apply(*promptMode, command, env.get(guest.EnvPromptFile), prompt, env.get)
	if err != nil {
		return err
	}

	if err := prepareWorkspace(ctx, env, *workspace, stderr); err != nil {
		return err
	}
	carried, err := copyUserConfig(env.get(guest.EnvUserConfig), env.get("HOME"), env.get("PATH"), stderr)
	if err != nil {
		return err
	}
	agentEnv := withProxyToken(env, token)
	if err := prepareHome(ctx, *providerName, agentEnv, *workspace, command, stderr); err != nil {
		return err
	}
	for path, content := range launch.Files {
		if err := writePrivate(path, withCarried(path, content, env.get("HOME"), carried)); err != nil {
			return fmt.Errorf("writing the prompt for the agent: %w", err)
		}
	}
	path, err := lookPath(launch.Argv[0], agentEnv.get("PATH"))
	if err != nil {
		return fmt.Errorf("the agent command is not in the image: %w; install it, or set agent.command in bottle.yaml", err)
	}
	return execve(*workspace, path, launch.Argv, agentEnv.list())
}

// prepareWorkspace clones the gate's repository into dir and checks out the
// bottle's branch, or keeps dir when it is a repository already.
func prepareWorkspace(ctx context.Context, env *envList, dir string, stderr io.Writer) error {
	if _, err := exec.LookPath("git"); err != nil {
		return errors.New("this image has no git: the workspace bootstrap clones the repository with it; install git in the agent image")
	}
	gitEnv := env.with("GIT_TERMINAL_PROMPT", "0").list()
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		cmd.Env = gitEnv
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
	if st, err := os.Stat(filepath.Join(dir, ".git")); err == nil && st.IsDir() {
		fmt.Fprintf(stderr, "docker bottle: keeping the workspace in %s\n", dir)
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("making the workspace: %w", err)
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("reading the workspace: %w", err)
	} else if len(ents) > 0 {
		return fmt.Errorf("the workspace %s is not empty and not a git repository: the bottle clones into an empty directory", dir)
	}
	gate, branch := env.get(guest.EnvGateURL), env.get(guest.EnvBranch)
	fmt.Fprintf(stderr, "docker bottle: cloning the repository from the git gate into %s\n", dir)
	if _, err := git("clone", "--quiet", "--", gate, "."); err != nil {
		return fmt.Errorf("cloning from the git gate at %s: %w", gate, err)
	}
	if _, err := git("rev-parse", "--verify", "--quiet", "refs/remotes/origin/"+branch); err == nil {
		// The branch exists on the gate (pushed by an earlier run): go on
		// from there.
		if _, err := git("checkout", "--quiet", "-b", branch, "--track", "origin/"+branch); err != nil {
			return err
		}
	} else {
		if _, err := git("checkout", "--quiet", "-b", branch); err != nil {
			return err
		}
		// A plain `git push` then goes to the same branch on the gate, the
		// only place the gate lets it go.
		if _, err := git("config", "branch."+branch+".remote", "origin"); err != nil {
			return err
		}
		if _, err := git("config", "branch."+branch+".merge", "refs/heads/"+branch); err != nil {
			return err
		}
	}
	if email, _ := git("config", "user.email"); email == "" {
		name := env.get(guest.EnvBottleName)
		if name == "" {
			name = "bottle"
		}
		if _, err := git("config", "user.name", "Agent in bottle "+name); err != nil {
			return err
		}
		if _, err := git("config", "user.email", "agent@"+name+".bottle.invalid"); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "docker bottle: on branch %s\n", branch)
	return nil
}

// prepareHome gives the agent what it would otherwise ask a human for on
// its first start, once: nothing in it is a secret.
func prepareHome(ctx context.Context, provider string, env *envList, workspace string, command []string, stderr io.Writer) error {
	home := env.get("HOME")
	switch provider {
	case "claude":
		if home == "" {
			return errors.New("HOME is not set: Claude Code keeps its state there")
		}
		path := filepath.Join(home, ".claude.json")
		// The file may hold the user's MCP servers, copied just before;
		// once onboarded (a restarted bottle), it is the agent's own.
		cfg := map[string]any{}
		if b, err := os.ReadFile(path); err == nil {
			if json.Unmarshal(b, &cfg) != nil || cfg["hasCompletedOnboarding"] == true {
				return nil
			}
		}
		cfg["hasCompletedOnboarding"] = true
		// The workspace is the repository the user gave the bottle.
		cfg["projects"] = map[string]any{workspace: map[string]any{"hasTrustDialogAccepted": true}}
		// Claude Code asks once about a key found in the environment; it
		// remembers the answer by the key's last 20 characters. The key here
		// is the placeholder the proxy replaces.
		if k := strings.TrimSpace(env.get("ANTHROPIC_API_KEY")); k != "" {
			cfg["customApiKeyResponses"] = map[string]any{"approved": []string{k[max(0, len(k)-20):]}, "rejected": []string{}}
		}
		b, _ := json.MarshalIndent(cfg, "", "  ")
		if err := writePrivate(path, append(b, '\n')); err != nil {
			return fmt.Errorf("preparing Claude Code's settings: %w", err)
		}
	case "codex":
		// Codex reads its API key from its own login, not from the
		// environment; log it in with the placeholder, through its
		// documented command. Whatever the bottle's command is (codex
		// itself, or a script that runs it), the codex on PATH is the one
		// it will run.
		key := env.get("OPENAI_API_KEY")
		codexHome := env.get("CODEX_HOME")
		if codexHome == "" && home != "" {
			codexHome = filepath.Join(home, ".codex")
		}
		if key == "" || codexHome == "" {
			return nil
		}
		if _, err := os.Stat(filepath.Join(codexHome, "auth.json")); err == nil {
			return nil
		}
		name := "codex"
		if filepath.Base(command[0]) == "codex" {
			name = command[0]
		}
		path, err := lookPath(name, env.get("PATH"))
		if err != nil {
			fmt.Fprintf(stderr, "docker bottle: codex is not on PATH, so it was not logged in: %v\n", err)
			return nil
		}
		if err := os.MkdirAll(codexHome, 0o700); err != nil {
			return fmt.Errorf("preparing Codex's home: %w", err)
		}
		cmd := exec.CommandContext(ctx, path, "login", "--with-api-key")
		cmd.Env = env.with("CODEX_HOME", codexHome).list()
		cmd.Stdin = strings.NewReader(key + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(stderr, "docker bottle: `codex login --with-api-key` failed (%v): %s\n", err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func writePrivate(path string, content []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, content, 0o600)
}
