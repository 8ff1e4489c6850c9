package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/docker/cli/cli"

	"github.com/docker-bottle/docker-bottle/internal/testenv"
	"github.com/docker-bottle/docker-bottle/plugin"
)

func TestExitCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{errors.New("boom"), 1},
		{cli.StatusError{StatusCode: 125, Status: "bad flag"}, 125},
		{fmt.Errorf("wrapped: %w", cli.StatusError{StatusCode: 3}), 3},
		{cli.StatusError{}, 1},
		{fmt.Errorf("bring-up: %w", context.Canceled), 130},
		{fmt.Errorf("%w: waiting for the bundle", plugin.ErrInterrupted), 130},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestMetadataIsManifest(t *testing.T) {
	out, err := exec.Command(testenv.Plugin(t), "docker-cli-plugin-metadata").Output()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(), "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("metadata is not JSON: %v\n%s", err, out)
	}
	if err := json.Unmarshal(manifest, &want); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metadata %v\nmanifest %v", got, want)
	}
	if want["SchemaVersion"] != "0.1.0" || want["Vendor"] == "" {
		t.Errorf("manifest.json must have SchemaVersion 0.1.0 and a Vendor: %v", want)
	}
}
