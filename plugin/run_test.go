package plugin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/docker-bottle/docker-bottle/plan"
)

// onContext is a docker CLI whose current context is name.
type onContext struct {
	command.Cli
	name string
}

func (c onContext) CurrentContext() string { return c.name }

// The TLS the docker CLI was given for its host, as the plan records it:
// the files' absolute paths, a certificate or key not given and absent
// left out, nothing without TLS or on a named context.
func TestEngineTLSReadsTheCLIsFlags(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The defaults are DOCKER_CERT_PATH's files as the CLI started with
	// it: they are left out when absent.
	defaults := flags.NewClientOptions()
	defaults.InstallFlags(pflag.NewFlagSet("defaults", pflag.ContinueOnError))
	for _, tc := range []struct {
		name, context string
		args          []string
		want          *plan.EngineTLS
	}{
		{"no TLS", "default", []string{"-H", "tcp://10.0.0.2:2376"}, nil},
		{"tlsverify with files", "default", []string{"-H", "tcp://10.0.0.2:2376", "--tlsverify", "--tlscacert", "ca.pem", "--tlscert", "cert.pem", "--tlskey", "key.pem"},
			&plan.EngineTLS{Verify: true, CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}},
		{"tlsverify=false is TLS without verifying", "default", []string{"-H", "tcp://10.0.0.2:2376", "--tlsverify=false", "--tlscacert", "ca.pem"},
			&plan.EngineTLS{CAFile: filepath.Join(dir, "ca.pem")}},
		{"tls with the default certificate and key", "default", []string{"--tls", "--tlscacert", "ca.pem"},
			&plan.EngineTLS{CAFile: filepath.Join(dir, "ca.pem"), CertFile: ifExists(defaults.TLSOptions.CertFile), KeyFile: ifExists(defaults.TLSOptions.KeyFile)}},
		{"a named context", "big", []string{"--context", "big", "--tlsverify"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The plugin's root holds the CLI's global flags, as
			// cli.SetupPluginRootCommand installs them.
			root := &cobra.Command{Use: "docker", TraverseChildren: true}
			flags.NewClientOptions().InstallFlags(root.Flags())
			run := &cobra.Command{Use: "run"}
			root.AddCommand(run)
			if err := root.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			got := engineTLS(run, onContext{name: tc.context})
			switch {
			case tc.want == nil && got != nil:
				t.Errorf("%v: %+v, want nil", tc.args, *got)
			case tc.want != nil && (got == nil || *got != *tc.want):
				t.Errorf("%v: %+v, want %+v", tc.args, got, *tc.want)
			}
		})
	}
}

// ifExists is path when a file is there, else "".
func ifExists(path string) string {
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}
