package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"
	"github.com/docker/cli/opts"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/backend"
	"github.com/docker-bottle/docker-bottle/bottles"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/provider"
	"github.com/docker-bottle/docker-bottle/spec"
)

type runOptions struct {
	spec          specOptions
	name          string
	backend       string
	networkMode   string
	detach        bool
	rm            bool
	prompt        string
	promptFile    string
	env           opts.ListOpts
	registry      string
	progress      string
	dryRun        bool
	format        string
	keepOnFailure bool
	agentArgs     []string
	workspace     string
	noUserConfig  bool
	publish       portsFlag
	preflight     bool
	yes           bool
	// engineTLS is the TLS the docker CLI was given for its host
	// (engineTLS), which the bottle's plan records.
	engineTLS *plan.EngineTLS
}

func runCmd(dockerCli command.Cli) *cobra.Command {
	o := runOptions{env: opts.NewListOpts(opts.ValidateEnv)}
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] [PATH] [-- AGENT ARGS...]",
		Short: "Run an agent in a new bottle on the repository at PATH (default: .)",
		// Arguments after -- belong to the agent.
		Args: func(cmd *cobra.Command, args []string) error {
			if d := cmd.ArgsLenAtDash(); d >= 0 {
				args = args[:d]
			}
			return cli.RequiresMaxArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				o.agentArgs = args[dash:]
				args = args[:dash]
			}
			o.workspace = "."
			if len(args) == 1 {
				o.workspace = args[0]
			}
			o.engineTLS = engineTLS(cmd, dockerCli)
			return runRun(cmd.Context(), dockerCli, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.spec.file, "file", "f", "", "Bottle spec file (default: PATH/bottle.yaml when present)")
	f.StringVar(&o.name, "name", "", "Name of the bottle (default: from the spec or the directory)")
	f.StringVar(&o.backend, "backend", "", `Where the agent runs: "auto", "smolvm" or "docker"`)
	f.StringVar(&o.networkMode, "network-mode", "", `smolvm network mode: "auto", "bridge" or "loopback"`)
	f.BoolVarP(&o.detach, "detach", "d", false, "Run in the background and print the bottle's name")
	f.BoolVar(&o.rm, "rm", false, "Remove the bottle when the agent exits")
	f.StringVar(&o.prompt, "prompt", "", "Prompt for the agent")
	f.StringVar(&o.promptFile, "prompt-file", "", "Read the prompt for the agent from a file")
	f.VarP(&o.env, "env", "e", "Set a plain (non-secret) environment variable in the bottle")
	f.StringVar(&o.registry, "registry", "", "Push the agent image to this repository instead of the embedded registry")
	f.StringVar(&o.progress, "progress", "auto", `Progress output: "auto", "tty", "plain", "quiet" or "json"`)
	f.BoolVar(&o.dryRun, "dry-run", false, "Print the plan and start nothing")
	f.StringVar(&o.format, "format", "", `With --dry-run: "json" prints the plan as JSON`)
	f.BoolVar(&o.keepOnFailure, "keep-on-failure", false, "Keep what a failed run made, for debugging")
	f.BoolVar(&o.noUserConfig, "no-user-config", false, "Carry none of your agent settings (instructions, commands, MCP servers) into the bottle")
	f.BoolVar(&o.preflight, "preflight", false, "Show what the bottle will be allowed and ask before starting it")
	f.BoolVarP(&o.yes, "yes", "y", false, "With --preflight: start without asking (the preflight is still shown)")
	f.VarP(&o.publish, "publish", "p", "Publish a port the agent listens on at 127.0.0.1:HOSTPORT on the host (a free port when not given)")
	return cmd
}

func runRun(ctx context.Context, dockerCli command.Cli, o runOptions) error {
	if o.prompt != "" && o.promptFile != "" {
		return fmt.Errorf("--prompt and --prompt-file exclude each other")
	}
	if err := checkRunFormat(o.format, o.dryRun, o.preflight); err != nil {
		return err
	}
	if err := checkProgressMode(o.progress); err != nil {
		return err
	}
	if o.yes && !o.preflight {
		return fmt.Errorf("--yes goes with --preflight: it answers the preflight's question")
	}
	if o.preflight && o.dryRun {
		return fmt.Errorf("--preflight and --dry-run exclude each other: --dry-run shows the plan and starts nothing")
	}
	if o.preflight && !o.yes && !dockerCli.In().IsTerminal() {
		return fmt.Errorf("--preflight asks on the terminal, and the input is not one: add --yes to start without asking")
	}
	if o.detach && o.rm {
		return fmt.Errorf("--rm and --detach exclude each other: remove a detached bottle with `docker bottle rm`")
	}
	svc, err := bottles.New(dockerCli, bottles.WithProgress(o.progress))
	if err != nil {
		return err
	}
	defer svc.Close()
	in, err := checkRun(ctx, dockerCli, svc, o, dockerCli.Err())
	if err != nil {
		return err
	}
	if o.dryRun {
		// Through Run, which stops after Prepare: its checks and its
		// errors are a real run's.
		res, err := svc.Run(ctx, bottles.RunOptions{Prepare: in.prepare})
		if err != nil {
			return err
		}
		if o.format == "json" {
			enc := json.NewEncoder(dockerCli.Out())
			enc.SetIndent("", "  ")
			return enc.Encode(res.Plan)
		}
		b, err := svc.Backend(res.Plan)
		if err != nil {
			return err
		}
		printPlan(dockerCli.Out(), res.Plan, b)
		return nil
	}
	if o.preflight {
		if err := preflight(ctx, dockerCli, svc, in, o.yes); err != nil {
			return err
		}
	}

	tty := !o.detach && dockerCli.In().IsTerminal() && dockerCli.Out().IsTerminal()
	res, err := launch(ctx, svc, in, o, tty, backend.Streams{Stdin: dockerCli.In(), Stdout: dockerCli.Out(), Stderr: dockerCli.Err()})
	if err != nil {
		return err
	}
	p := res.Plan
	if o.detach {
		fmt.Fprintln(dockerCli.Out(), p.Slug)
		return nil
	}
	if res.Detached {
		fmt.Fprintf(dockerCli.Err(), "\nbottle %s: detached; the agent keeps running: `docker bottle attach %s`, `docker bottle logs -f %s`\n",
			p.Slug, p.Slug, p.Slug)
		return nil
	}
	if !o.rm {
		fmt.Fprintf(dockerCli.Err(), "\nbottle %s: the agent exited with code %d. Its work: `docker bottle diff %s`, its branches: `git fetch %s`; remove the bottle: `docker bottle rm %s`\n",
			p.Slug, res.ExitCode, p.Slug, p.GitGate.Remote, p.Slug)
	}
	if res.ExitCode != 0 {
		return cli.StatusError{StatusCode: res.ExitCode}
	}
	return nil
}

// launch makes and starts the bottle a run checked, with the agent on
// streams (its terminal when tty).
func launch(ctx context.Context, svc *bottles.Service, in runInput, o runOptions, tty bool, streams backend.Streams) (bottles.RunResult, error) {
	ro, done, err := svc.WithAgentImage(agentImage(in.spec, in.prepare.Workspace), bottles.RunOptions{})
	if err != nil {
		return bottles.RunResult{}, err
	}
	defer done()
	ro.Prepare, ro.BringUp = in.prepare, bottles.BringUpOptions{ExtraCAFile: in.extraCA}
	ro.Detach, ro.TTY, ro.Interactive, ro.Remove, ro.KeepOnFailure = o.detach, tty, tty, o.rm, o.keepOnFailure
	ro.Stdin, ro.Stdout, ro.Stderr = streams.Stdin, streams.Stdout, streams.Stderr
	return svc.Run(ctx, ro)
}

// preflight shows what the bottle will be allowed, from its plan as a dry
// run makes it (nothing is created), and asks the user to confirm unless
// yes.
func preflight(ctx context.Context, dockerCli command.Cli, svc *bottles.Service, in runInput, yes bool) error {
	if err := showPreflight(ctx, dockerCli.Out(), svc, in); err != nil {
		return err
	}
	if yes {
		fmt.Fprintln(dockerCli.Out(), "Starting it (--yes).")
		return nil
	}
	return confirmStart(ctx, dockerCli.In(), dockerCli.Out())
}

// showPreflight writes the preflight of a checked run to w.
func showPreflight(ctx context.Context, w io.Writer, svc *bottles.Service, in runInput) error {
	dry := in.prepare
	dry.DryRun = true
	res, err := svc.Run(ctx, bottles.RunOptions{Prepare: dry})
	if err != nil {
		return err
	}
	return writePreflight(w, res.Plan, in.spec)
}

// runInput is what a run starts from, checked.
type runInput struct {
	spec    loadedSpec
	prepare bottles.PrepareOptions
	extraCA string
}

// checkRun reads what a run starts from and makes every check of it that
// needs nothing made first: the workspace, the spec, the provider's
// credentials and the spec's secrets, the prompt, the backend and network
// mode on this engine, the extra CA, the agent's image, the user's agent
// settings (a secret in them stops the run), with notes on what they
// carry written to notes. Run and --dry-run
// both go through it and then through Prepare (the repository, the names
// in use), in this order, so a dry run refuses what a run would, with the
// same message.
func checkRun(ctx context.Context, dockerCli command.Cli, svc *bottles.Service, o runOptions, notes io.Writer) (runInput, error) {
	workspace, err := filepath.Abs(o.workspace)
	if err != nil {
		return runInput{}, err
	}
	if st, err := os.Stat(workspace); err != nil || !st.IsDir() {
		return runInput{}, fmt.Errorf("%s is not a directory: give the path of the repository the agent works on", o.workspace)
	}
	env := map[string]string{}
	for _, kv := range o.env.GetSlice() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	ls, err := loadSpec(o.spec, workspace, spec.Overrides{
		Name: o.name, Backend: o.backend, NetworkMode: o.networkMode, Registry: o.registry, Env: env,
		NoUserConfig: o.noUserConfig, Ports: o.publish,
	})
	if err != nil {
		return runInput{}, err
	}
	if len(o.agentArgs) > 0 {
		ls.spec.Agent.Command = append(ls.spec.Agent.Command, o.agentArgs...)
	}
	// The agent sees placeholders for the credentials present on the
	// host; the proxy swaps in the real values.
	for k, v := range provider.PlaceholderEnv(ls.spec.Egress.Secrets, provider.HostSecretPresent) {
		if ls.spec.Agent.Env == nil {
			ls.spec.Agent.Env = map[string]string{}
		}
		ls.spec.Agent.Env[k] = v
	}
	if err := ls.provider.CheckCredentials(ls.spec.Egress.Secrets, provider.HostSecretPresent); err != nil {
		return runInput{}, err
	}
	if err := bringup.CheckSecrets(ls.spec.Egress.Secrets, nil); err != nil {
		return runInput{}, err
	}
	prompt, err := readPrompt(ls, workspace, o)
	if err != nil {
		return runInput{}, err
	}
	choice, err := plan.Choose(gatherFacts(ctx, dockerCli, false), ls.spec.Backend, ls.spec.NetworkMode)
	if err != nil {
		return runInput{}, err
	}
	if err := checkTransport(ctx, dockerCli.DockerEndpoint().Host, ls.spec.Ports); err != nil {
		return runInput{}, err
	}
	extraCA, err := ls.spec.ExtraCAFile(spec.Base(ls.path, workspace))
	if err != nil {
		return runInput{}, err
	}
	if err := svc.CheckAgentImage(ctx, agentImage(ls, workspace)); err != nil {
		return runInput{}, err
	}
	userConf, err := userConfigTar(ls, notes)
	if err != nil {
		return runInput{}, err
	}
	return runInput{spec: ls, extraCA: extraCA, prepare: bottles.PrepareOptions{Spec: ls.spec, NameFlag: o.name, Workspace: workspace,
		Prompt: prompt, Provider: ls.provider.Plan(), Choice: choice, DryRun: o.dryRun, UserConfig: userConf, EngineTLS: o.engineTLS}}, nil
}

// engineTLS is the TLS the docker CLI that runs the plugin uses for the
// host of its default context (-H or DOCKER_HOST): --tls or --tlsverify
// (or DOCKER_TLS_VERIFY), with the files of --tlscacert, --tlscert and
// --tlskey (by default DOCKER_CERT_PATH's), read from the CLI's global
// flags and resolved as the CLI resolves them (a certificate or key that
// was not given and does not exist is left out). The paths are absolute:
// git-remote-bottle runs in another directory. Nil without TLS, and on a
// named context, which keeps its own TLS material.
func engineTLS(cmd *cobra.Command, dockerCli command.Cli) *plan.EngineTLS {
	if dockerCli.CurrentContext() != command.DefaultContextName {
		return nil
	}
	f := cmd.Root().Flags()
	useTLS, _ := f.GetBool("tls")
	verify, err := f.GetBool(flags.FlagTLSVerify)
	if err != nil || !(useTLS || verify || f.Changed(flags.FlagTLSVerify)) {
		return nil
	}
	file := func(name string, optional bool) string {
		path, err := f.GetString(name)
		if err != nil || path == "" {
			return ""
		}
		if optional && !f.Changed(name) {
			if _, err := os.Stat(path); err != nil {
				return ""
			}
		}
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return path
	}
	return &plan.EngineTLS{Verify: verify, CAFile: file("tlscacert", false), CertFile: file("tlscert", true), KeyFile: file("tlskey", true)}
}

// agentImage is the agent image a spec asks for.
func agentImage(ls loadedSpec, workspace string) bottles.AgentImage {
	return bottles.AgentImage{Spec: ls.spec, Provider: ls.provider, Base: spec.Base(ls.path, workspace), Workspace: workspace}
}

// readPrompt takes the prompt from the flags, else from the spec.
func readPrompt(ls loadedSpec, workspace string, o runOptions) (string, error) {
	switch {
	case o.prompt != "":
		return o.prompt, nil
	case o.promptFile != "":
		data, err := os.ReadFile(o.promptFile)
		if err != nil {
			return "", fmt.Errorf("reading --prompt-file: %w", err)
		}
		return string(data), nil
	}
	return ls.spec.Prompt(spec.Base(ls.path, workspace))
}

func printPlan(out io.Writer, p plan.Plan, b backend.Backend) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
	row("bottle", p.Slug)
	row("workspace", p.Workspace)
	row("backend", p.Backend+" ("+p.NetworkMode+")")
	row("why", p.Why)
	row("stage dir", p.StageDir)
	row("agent", p.Agent.Provider+": "+strings.Join(p.Agent.Command, " "))
	row("bundle", fmt.Sprintf("%s on %s (%s, gateway %s, bundle %s)", p.Bundle.Container, p.Bundle.Network,
		p.Bundle.Subnet, p.Bundle.Gateway, p.Bundle.IP))
	if p.Bundle.InternalNetwork != "" {
		row("internal network", fmt.Sprintf("%s (%s, bundle %s)", p.Bundle.InternalNetwork, p.Bundle.InternalSubnet, p.Bundle.InternalIP))
	}
	row(b.Describe(p))
	if p.Endpoints != nil {
		row("agent proxy", p.Endpoints.AgentProxyURL)
		row("agent git gate", "http://"+p.Endpoints.AgentGitGateHost+"/")
		row("agent supervisor", p.Endpoints.AgentSuperviseURL)
	} else {
		row("agent endpoints", plan.SmolvmGateway+":<published ports>, known after bring-up")
	}
	row("git branch", p.GitGate.Branch+" (push: "+strings.Join(p.GitGate.Push, ", ")+")")
	row("git remote", p.GitGate.Remote)
	var allow []string
	for _, r := range p.Egress.Allow {
		allow = append(allow, r.Host)
	}
	row("egress allow", strings.Join(allow, ", "))
	var secrets []string
	for _, s := range p.Egress.Secrets {
		secrets = append(secrets, secretText(s))
	}
	if len(secrets) > 0 {
		row("secrets", strings.Join(secrets, "; "))
	}
	w.Flush()
	fmt.Fprintln(out, "\nDry run: nothing was created.")
}
