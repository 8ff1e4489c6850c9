package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
)

type decideOptions struct {
	name     string
	id       string
	decision approval.Decision
}

func approveCmd(dockerCli command.Cli) *cobra.Command {
	var opts decideOptions
	var always bool
	cmd := &cobra.Command{
		Use:   "approve [OPTIONS] NAME ID",
		Short: "Let a held request of a bottle through",
		Long: "Let a held request of a bottle through, once or, with --always, for the rest of the\n" +
			"bottle's life. ID is any unique prefix of an ID that `docker bottle approvals` lists.",
		Args: cli.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.name, opts.id, opts.decision = args[0], args[1], approval.AllowOnce
			if always {
				opts.decision = approval.AllowAlways
			}
			return runDecide(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().BoolVar(&always, "always", false, "Allow the same request again without asking, for the bottle's life")
	return cmd
}

func runDecide(ctx context.Context, dockerCli command.Cli, opts decideOptions) error {
	if opts.id == "" {
		return fmt.Errorf("no request ID given: list them with `docker bottle approvals %s`", opts.name)
	}
	sup, err := openSupervisor(ctx, dockerCli, opts.name)
	if err != nil {
		return err
	}
	// The full ID is needed; tables show a prefix, as docker does.
	as, err := sup.c.Approvals(ctx)
	if err != nil {
		return sup.wrap(err)
	}
	var match []api.Approval
	for _, a := range as {
		if a.ID == opts.id {
			match = []api.Approval{a}
			break
		}
		if strings.HasPrefix(a.ID, opts.id) {
			match = append(match, a)
		}
	}
	switch len(match) {
	case 0:
		return fmt.Errorf("bottle %q has no pending request %q: it may have been decided or timed out; list them with `docker bottle approvals %s`",
			opts.name, opts.id, opts.name)
	case 1:
	default:
		return fmt.Errorf("%q matches %d pending requests of bottle %q: give more of the ID", opts.id, len(match), opts.name)
	}
	d, err := sup.c.Decide(ctx, match[0].ID, opts.decision)
	if err != nil {
		if client.StatusCode(err) == 404 {
			return fmt.Errorf("request %s of bottle %q was settled meanwhile (decided, timed out or withdrawn)", match[0].ID, opts.name)
		}
		return sup.wrap(err)
	}
	_, err = fmt.Fprintf(dockerCli.Out(), "%s: %s %s (%s)\n", decisionVerbs[d.Decision], clean(string(d.Kind)), clean(d.Subject), d.ID)
	return err
}

// decisionVerbs say what a decision did, for the operator.
var decisionVerbs = map[approval.Decision]string{
	approval.AllowOnce:   "Allowed once",
	approval.AllowAlways: "Allowed for the bottle's life",
	approval.Deny:        "Denied",
}
