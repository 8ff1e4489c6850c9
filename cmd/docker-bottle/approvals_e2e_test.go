//go:build e2e

package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/internal/testenv"
)

// TestApprovalRoundTrip holds a request through a real bundle's proxy to a
// host the rules do not list, lists it with `docker bottle approvals`,
// lets it through with `docker bottle approve`; a second such request is
// denied when the timeout passes, and the audit says so.
func TestApprovalRoundTrip(t *testing.T) {
	t.Parallel()
	eng := testenv.Engine(t)
	cfg := testenv.DockerConfig(t)
	ctx := context.Background()
	svc, p := upBottle(t, cfg, "supervise:\n  approvals: [egress]\n  timeout: 6s\n", testenv.GitRepo(t))
	internet := testenv.NewInternet(t, eng)
	internet.Host(t, "api.approve.test", "")
	internet.Host(t, "slow.approve.test", "")
	internet.Connect(t, p.Bundle.Container)

	tok, _ := os.ReadFile(p.AgentTokenFile)
	get := func(target string) <-chan string {
		out := make(chan string, 1)
		go func() {
			u, _ := url.Parse("http://" + p.Endpoints.HostProxy)
			hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), ProxyConnectHeader: nil}}
			req, _ := http.NewRequest("GET", target, nil)
			req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("bottle:"+string(tok))))
			resp, err := hc.Do(req)
			if err != nil {
				out <- "error: " + err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out <- resp.Status + " " + string(body)
		}()
		return out
	}
	pending := func() []api.Approval {
		r := docker(t, cfg, nil, "bottle", "approvals", p.Slug, "--format", "json")
		if r.code != 0 {
			t.Fatalf("approvals: exit %d %s", r.code, r.stderr)
		}
		var as []api.Approval
		sc := bufio.NewScanner(strings.NewReader(r.stdout))
		for sc.Scan() {
			var a api.Approval
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatalf("approvals --format json: %v: %q", err, sc.Text())
			}
			as = append(as, a)
		}
		return as
	}
	waitPending := func(subject string) api.Approval {
		for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(50 * time.Millisecond) {
			for _, a := range pending() {
				if strings.HasPrefix(a.Subject, subject) {
					return a
				}
			}
		}
		t.Fatalf("no pending approval for %s", subject)
		return api.Approval{}
	}

	first := get("http://api.approve.test/")
	a := waitPending("api.approve.test")
	// No agent ran here, so nothing was pushed: diff says so.
	if d := docker(t, cfg, nil, "bottle", "diff", p.Slug); d.code != 1 || !strings.Contains(d.stderr, "has pushed nothing to bottle/"+p.Slug+"/work yet") {
		t.Errorf("diff before any push: exit %d %q", d.code, d.stderr)
	}
	// ls counts what waits for a decision.
	if ls := docker(t, cfg, nil, "bottle", "ls", "--format", "{{.Name}} {{.Waiting}}"); strings.TrimSpace(ls.stdout) != p.Slug+" 1" {
		t.Errorf("ls while a request waits: %q %q", ls.stdout, ls.stderr)
	}
	if a.Kind != "egress" {
		t.Errorf("pending %+v", a)
	}
	select {
	case r := <-first:
		t.Fatalf("the request went through before anyone decided: %s", r)
	default:
	}
	if r := docker(t, cfg, nil, "bottle", "approve", p.Slug, a.ID); r.code != 0 {
		t.Fatalf("approve: exit %d %s", r.code, r.stderr)
	}
	select {
	case r := <-first:
		if !strings.HasPrefix(r, "200") || !strings.Contains(r, "hello from api.approve.test") {
			t.Fatalf("after approve: %s", r)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the approved request never finished")
	}

	second := get("http://slow.approve.test/")
	waitPending("slow.approve.test")
	select {
	case r := <-second:
		if !strings.HasPrefix(r, "403") || !strings.Contains(r, "slow.approve.test") {
			t.Fatalf("after the timeout: %s", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held request was never denied")
	}
	if left := pending(); len(left) != 0 {
		t.Errorf("still pending after the timeout: %+v", left)
	}
	audit := docker(t, cfg, nil, "bottle", "audit", p.Slug, "--format", "json")
	if audit.code != 0 || !strings.Contains(audit.stdout, "slow.approve.test") || !strings.Contains(audit.stdout, "timeout") {
		t.Errorf("audit: exit %d\n%s", audit.code, audit.stdout)
	}

	// Interactive: each held request is shown as it arrives and decided
	// by the answer typed for it.
	ask := exec.Command(testenv.DockerCLI(t), "bottle", "approvals", "-i", p.Slug)
	ask.Env = append(os.Environ(), "DOCKER_CONFIG="+cfg)
	stdin, err := ask.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := ask.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ask.Start(); err != nil {
		t.Fatal(err)
	}
	defer ask.Process.Kill()
	shown := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			shown <- sc.Text()
		}
		close(shown)
	}()
	var transcript []string
	expect := func(want string) {
		t.Helper()
		for deadline := time.After(30 * time.Second); ; {
			select {
			case line, ok := <-shown:
				if !ok {
					t.Fatalf("approvals -i ended before %q:\n%s", want, strings.Join(transcript, "\n"))
				}
				transcript = append(transcript, line)
				if strings.Contains(line, want) {
					return
				}
			case <-deadline:
				t.Fatalf("approvals -i never showed %q:\n%s", want, strings.Join(transcript, "\n"))
			}
		}
	}
	expect("Waiting for requests")
	io.WriteString(stdin, "y\n") // with nothing shown, an answer is dropped
	expect("that answer is dropped")
	third := get("http://api.approve.test/")
	expect("egress request")
	io.WriteString(stdin, "y\n")
	expect("Allowed once")
	if r := <-third; !strings.HasPrefix(r, "200") {
		t.Errorf("allowed interactively: %s", r)
	}
	fourth := get("http://slow.approve.test/")
	expect("slow.approve.test")
	io.WriteString(stdin, "maybe\nn\n")
	expect("is not an answer")
	expect("Denied")
	if r := <-fourth; !strings.HasPrefix(r, "403") {
		t.Errorf("denied interactively: %s", r)
	}
	stdin.Close()
	if err := ask.Wait(); err != nil {
		t.Errorf("approvals -i at the end of its input: %v\n%s", err, strings.Join(transcript, "\n"))
	}
	if audit := docker(t, cfg, nil, "bottle", "audit", p.Slug); !regexp.MustCompile(`deny\s+approval\.decided egress slow\.approve\.test[^\n]*by operator`).MatchString(audit.stdout) {
		t.Errorf("the interactive denial is not in the audit as the operator's:\n%s", audit.stdout)
	}

	// Removing the bottle leaves nothing: no engine object with its
	// label, no stage dir, no git remote, no subnet reservation.
	if err := svc.Remove(ctx, p.Slug, false); err != nil {
		t.Fatal(err)
	}
	testenv.NothingLeft(t, eng, testenv.Bottle{Name: p.Slug, State: stateOf(cfg).State, Repo: p.Workspace})
}
