package plugin

import (
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestCommandsAreWellFormed walks every command, as buildx's root test
// does: one-line help, a Use line starting with the name, an Args check, a
// RunE, and usage text for every flag.
func TestCommandsAreWellFormed(t *testing.T) {
	cli, err := command.NewDockerCli()
	if err != nil {
		t.Fatal(err)
	}
	root := NewRootCmd(cli)
	if len(root.Commands()) == 0 {
		t.Fatal("no subcommands")
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			name := sub.CommandPath()
			if sub.Short == "" || strings.Contains(sub.Short, "\n") || strings.HasSuffix(sub.Short, ".") {
				t.Errorf("%s: Short must be one line without a final period: %q", name, sub.Short)
			}
			if !strings.HasPrefix(sub.Use, sub.Name()) {
				t.Errorf("%s: Use %q does not start with the name", name, sub.Use)
			}
			if sub.HasSubCommands() {
				walk(sub)
				continue
			}
			if sub.RunE == nil {
				t.Errorf("%s: no RunE", name)
			}
			if sub.Args == nil {
				t.Errorf("%s: no Args validation", name)
			}
			sub.Flags().VisitAll(func(f *pflag.Flag) {
				if f.Usage == "" {
					t.Errorf("%s --%s: no usage text", name, f.Name)
				}
			})
		}
	}
	walk(root)
}
