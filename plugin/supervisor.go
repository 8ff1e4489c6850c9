package plugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"

	dockerbackend "github.com/docker-bottle/docker-bottle/backend/docker"
	"github.com/docker-bottle/docker-bottle/bringup"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/client"
	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/docker-bottle/docker-bottle/spec"
	"github.com/docker-bottle/docker-bottle/stage"
)

// The commands that talk to a bottle's supervisor (approvals, approve,
// deny, events, audit, ls) reach it as follows.

// supervised is a bottle's supervisor, reached from the host with the
// operator's token.
type supervised struct {
	name string
	plan plan.Plan
	c    *client.Client
}

// openSupervisor loads the bottle's plan, checks that its bundle runs and
// publishes the supervisor where the plan says, reads its operator token
// from its file and returns a client for the supervisor's published port.
func openSupervisor(ctx context.Context, dockerCli command.Cli, name string) (*supervised, error) {
	p, err := loadPlan(name)
	if err != nil {
		return nil, err
	}
	return supervisorOf(ctx, dockerCli, p)
}

// dialClient is an HTTP client whose connections go to port in the
// bundle's network namespace through the engine API, never through a
// proxy.
func dialClient(eng dockerbackend.ExecEngine, p plan.Plan, port int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:       nil,
		DialContext: dockerbackend.DialContext(eng, p.Bundle.Container, bringup.BinaryPath, port),
		// Each connection is an exec in the bundle: keep a few for the
		// next requests rather than make one per request.
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// loadPlan loads a bottle's plan from its stage dir, without the engine.
func loadPlan(name string) (plan.Plan, error) {
	if err := spec.ValidateName(name); err != nil {
		return plan.Plan{}, err
	}
	dirs, err := stage.DefaultDirs()
	if err != nil {
		return plan.Plan{}, err
	}
	p, err := dirs.Stage(name).Load()
	if errors.Is(err, fs.ErrNotExist) {
		return p, fmt.Errorf("no bottle named %q: check the name, or start one with `docker bottle run --name %s`", name, name)
	}
	if err != nil {
		return p, fmt.Errorf("bottle %q: %w", name, err)
	}
	return p, nil
}

// supervisorOf is openSupervisor for a plan already loaded. The operator's
// token is sent only to the port the bottle's own bundle container
// publishes now: after the bundle died, any local process could listen on
// the port the plan recorded.
//
// Through the engine (plan.Plan.ThroughEngine), no published port is
// used: the supervisor is dialled in the bottle's own bundle container.
func supervisorOf(ctx context.Context, dockerCli command.Cli, p plan.Plan) (*supervised, error) {
	name := p.Slug
	dial := p.ThroughEngine()
	eng := dockerCli.Client()
	if !dial && (p.Endpoints == nil || p.Endpoints.HostSupervise == "") {
		return nil, fmt.Errorf("the bundle of bottle %q is not up, so there is no supervisor to ask: "+
			"run the bottle with `docker bottle run`, or remove it with `docker bottle rm %s`", name, name)
	}
	st, err := bringup.Inspect(ctx, eng, p)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Status != "missing" && !st.Ours:
		return nil, fmt.Errorf("the container %s is not the bundle of bottle %q, so its supervisor was not asked: remove the bottle with `docker bottle rm %s`",
			p.Bundle.Container, name, name)
	case !st.Serving:
		reason := st.Reason()
		return nil, fmt.Errorf("the bundle of bottle %q is not running (%s), so its supervisor was not asked: "+
			"start it with `docker bottle start %s`, or remove the bottle with `docker bottle rm %s`", name, reason, name, name)
	}
	if !dial && !publishedAt(p.Endpoints.HostSupervise, st.Ports.Supervise) {
		return nil, fmt.Errorf("the bundle of bottle %q publishes its supervisor on port %d, not on %s as its plan says, so it was not asked: "+
			"`docker bottle stop %s` and `docker bottle start %s` record the bundle's ports again", name, st.Ports.Supervise, p.Endpoints.HostSupervise, name, name)
	}
	tok, err := os.ReadFile(p.OperatorTokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the operator token of bottle %q: %w (the stage dir may be damaged: remove the bottle and run it again)", name, err)
	}
	var c *client.Client
	if dial {
		// The address names the bundle in messages; dialClient's
		// connections ignore it.
		c, err = client.New(net.JoinHostPort(p.Bundle.Container, strconv.Itoa(plan.SupervisePort)), strings.TrimSpace(string(tok)),
			client.WithHTTPClient(dialClient(eng, p, plan.SupervisePort)))
	} else {
		c, err = client.New(p.Endpoints.HostSupervise, strings.TrimSpace(string(tok)))
	}
	if err != nil {
		return nil, fmt.Errorf("bottle %q: %w", name, err)
	}
	return &supervised{name: name, plan: p, c: c}, nil
}

// publishedAt says whether the plan's host endpoint is on the port the
// bundle publishes now.
func publishedAt(endpoint string, port uint16) bool {
	_, p, _ := net.SplitHostPort(endpoint)
	return p == strconv.Itoa(int(port))
}

// wrap says what a failed supervisor call means for the user.
func (s *supervised) wrap(err error) error {
	var netErr net.Error
	switch client.StatusCode(err) {
	case 0:
		if errors.As(err, &netErr) {
			return fmt.Errorf("cannot reach the supervisor of bottle %q: %w; is its bundle running? (`docker ps -a --filter name=%s`)",
				s.name, netErr, s.plan.Bundle.Container)
		}
	case 401, 403:
		return fmt.Errorf("the supervisor at %s refused bottle %q's operator token: %w; "+
			"the port may now belong to another bundle: run the bottle again", s.c.Addr(), s.name, err)
	}
	return fmt.Errorf("bottle %q: %w", s.name, err)
}

// followEnd is how a followed stream ends: its context cancelled ends it
// without an error (adaptInterrupt makes a Ctrl-C exit 130, as `docker
// events` does).
func followEnd(ctx context.Context, s *supervised, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return s.wrap(err)
}
