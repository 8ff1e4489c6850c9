package supervisor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

// asking is a POST /v1/approvals sent in the background.
type asking struct {
	code int
	body []byte
}

func (f *fixture) askTool(t *testing.T, ctx context.Context, token string, body any) <-chan asking {
	t.Helper()
	ch := make(chan asking, 1)
	j, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+api.PathApprovals, strings.NewReader(string(j)))
		if err != nil {
			ch <- asking{code: -1, body: []byte(err.Error())}
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- asking{code: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- asking{code: resp.StatusCode, body: b}
	}()
	return ch
}

func answered(t *testing.T, ch <-chan asking) api.Answer {
	t.Helper()
	select {
	case a := <-ch:
		if a.code != http.StatusOK {
			t.Fatalf("ask: %d %s", a.code, a.body)
		}
		var ans api.Answer
		if err := json.Unmarshal(a.body, &ans); err != nil {
			t.Fatalf("ask answer %s: %v", a.body, err)
		}
		return ans
	case <-time.After(30 * time.Second):
		t.Fatal("the ask did not return")
		return api.Answer{}
	}
}

func withTools(c *Config) { c.Approvals.Kinds = append(c.Approvals.Kinds, approval.Tool) }

// TestAgentAsksToolApproval: the agent's own request, made through the new
// route, is held until the operator decides it; the agent cannot decide it
// whatever it tries, and the answer says who decided.
func TestAgentAsksToolApproval(t *testing.T) {
	f := start(t, withTools)
	res := f.askTool(t, context.Background(), f.agent, api.AskRequest{Kind: approval.Tool, Subject: "Bash(git push)", Detail: `{"command":"git push"}`})
	held := f.waitPending(t, 1)
	if held[0].Kind != approval.Tool || held[0].Subject != "Bash(git push)" || !strings.HasPrefix(held[0].Requester, "agent ") {
		t.Fatalf("held: %+v", held[0])
	}
	mine := f.pending(t, f.agent)
	if len(mine) != 1 || mine[0].ID != held[0].ID {
		t.Fatalf("the agent's view of its request: %+v", mine)
	}
	for _, d := range []approval.Decision{approval.AllowOnce, approval.AllowAlways, approval.Deny} {
		if code, body := f.decide(t, f.agent, held[0].ID, d); code != http.StatusForbidden {
			t.Fatalf("the agent deciding its own request %s: %d %s, want 403", d, code, body)
		}
	}
	select {
	case a := <-res:
		t.Fatalf("settled by the agent's attempts: %d %s", a.code, a.body)
	case <-time.After(50 * time.Millisecond):
	}
	if p := f.pending(t, f.operator); len(p) != 1 {
		t.Fatalf("pending after the agent's attempts: %+v", p)
	}
	if code, body := f.decide(t, f.operator, held[0].ID, approval.AllowAlways); code != 200 {
		t.Fatalf("operator: %d %s", code, body)
	}
	ans := answered(t, res)
	if ans.Decision != approval.AllowAlways || ans.By != byOperator || ans.ID != held[0].ID {
		t.Fatalf("answer %+v", ans)
	}
	// Remembered for the same subject, asked again.
	ans = answered(t, f.askTool(t, context.Background(), f.agent, api.AskRequest{Kind: approval.Tool, Subject: "Bash(git push)"}))
	if ans.Decision != approval.AllowAlways || ans.By != byRemembered || ans.ID != "" {
		t.Fatalf("second ask %+v", ans)
	}
	lines := decided(f.auditLines(t), "Bash(git push)")
	if len(lines) != 2 || lines[0]["by"] != "operator" || lines[1]["by"] != "remembered" {
		t.Fatalf("audit: %v", lines)
	}
}

func TestAskToolOutcomes(t *testing.T) {
	t.Run("tool approvals off: denied at once", func(t *testing.T) {
		f := start(t, nil)
		ans := answered(t, f.askTool(t, context.Background(), f.agent, api.AskRequest{Kind: approval.Tool, Subject: "Write(/workspace/x)"}))
		if ans.Decision != approval.Deny || ans.By != byPolicy || ans.Reason == "" {
			t.Fatalf("answer %+v", ans)
		}
	})
	t.Run("timeout denies", func(t *testing.T) {
		f := start(t, func(c *Config) { withTools(c); c.Approvals.Timeout = dur(time.Second) })
		ans := answered(t, f.askTool(t, context.Background(), f.agent, api.AskRequest{Kind: approval.Tool, Subject: "Bash(make)"}))
		if ans.Decision != approval.Deny || ans.By != byTimeout || ans.ID == "" {
			t.Fatalf("answer %+v", ans)
		}
	})
	t.Run("operator denies", func(t *testing.T) {
		f := start(t, withTools)
		res := f.askTool(t, context.Background(), f.agent, api.AskRequest{Kind: approval.Tool, Subject: "Bash(rm -rf /)"})
		id := f.waitPending(t, 1)[0].ID
		f.decide(t, f.operator, id, approval.Deny)
		if ans := answered(t, res); ans.Decision != approval.Deny || ans.By != byOperator {
			t.Fatalf("answer %+v", ans)
		}
	})
	t.Run("asker gone: withdrawn and recorded", func(t *testing.T) {
		f := start(t, withTools)
		ctx, cancel := context.WithCancel(context.Background())
		res := f.askTool(t, ctx, f.agent, api.AskRequest{Kind: approval.Tool, Subject: "Bash(sleep)"})
		f.waitPending(t, 1)
		cancel()
		<-res
		deadline := time.Now().Add(10 * time.Second)
		for {
			lines := decided(f.auditLines(t), "Bash(sleep)")
			if len(lines) == 1 && lines[0]["by"] == byRequester && lines[0]["decision"] == "deny" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("audit: %v", lines)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if p := f.pending(t, f.operator); len(p) != 0 {
			t.Fatalf("still pending: %+v", p)
		}
	})
}

func TestAskToolRefusals(t *testing.T) {
	f := start(t, withTools)
	for _, tc := range []struct {
		name, token, body string
		want              int
	}{
		{"no token", "", `{"kind":"tool","subject":"x"}`, 401},
		{"egress", f.agent, `{"kind":"egress","subject":"evil.example:443"}`, 403},
		{"push", f.agent, `{"kind":"push","subject":"refs/heads/main"}`, 403},
		{"unknown kind", f.agent, `{"kind":"root","subject":"x"}`, 403},
		{"no subject", f.agent, `{"kind":"tool"}`, 400},
		{"huge subject", f.agent, `{"kind":"tool","subject":"` + strings.Repeat("a", maxSubject+1) + `"}`, 400},
		{"unknown field", f.agent, `{"kind":"tool","subject":"x","decision":"allow-once"}`, 400},
		{"too large", f.agent, `{"kind":"tool","subject":"x","detail":"` + strings.Repeat("a", maxAskBytes) + `"}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.call(t, http.MethodPost, api.PathApprovals, tc.token, tc.body)
			if code != tc.want {
				t.Fatalf("%d %s, want %d", code, body, tc.want)
			}
		})
	}
	if p := f.pending(t, f.operator); len(p) != 0 {
		t.Fatalf("a refused request is pending: %+v", p)
	}
}
