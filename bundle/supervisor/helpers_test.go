package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
	"github.com/docker-bottle/docker-bottle/internal/testenv/testio"
)

// fixture is a supervisor serving on a real 127.0.0.1 port.
type fixture struct {
	s               *Supervisor
	cfg             Config
	url             string
	agent, operator string
	dir             string
}

func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func dur(d time.Duration) *Duration { v := Duration(d); return &v }

// start serves a supervisor whose policy holds egress and push requests
// for a minute, after edit changes the config.
func start(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{agent: randomToken(t), operator: randomToken(t), dir: dir}
	writeFile(t, filepath.Join(dir, "agent.token"), f.agent+"\n")
	writeFile(t, filepath.Join(dir, "operator.token"), f.operator+"\n")
	f.cfg = Config{
		Bottle:            "test",
		AgentTokenFile:    filepath.Join(dir, "agent.token"),
		OperatorTokenFile: filepath.Join(dir, "operator.token"),
		Approvals:         Policy{Kinds: []approval.Kind{approval.Egress, approval.Push}, Timeout: dur(time.Minute)},
	}
	if edit != nil {
		edit(&f.cfg)
	}
	s, err := New(f.cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.Close()
	})
	return f
}

// call sends one request and returns the status and body.
func (f *fixture) call(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// get decodes a 200 answer into v.
func (f *fixture) get(t *testing.T, path, token string, v any) {
	t.Helper()
	code, body := f.call(t, http.MethodGet, path, token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

func (f *fixture) pending(t *testing.T, token string) []api.Approval {
	t.Helper()
	var as []api.Approval
	f.get(t, api.PathApprovals, token, &as)
	return as
}

// waitPending polls until n requests are pending and returns them.
func (f *fixture) waitPending(t *testing.T, n int) []api.Approval {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		as := f.pending(t, f.operator)
		if len(as) == n {
			return as
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d pending, have %d: %+v", n, len(as), as)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitAskers polls until one held request has n askers (the first and
// those that joined it).
func (f *fixture) waitAskers(t *testing.T, n int) {
	t.Helper()
	testio.Eventually(t, 10*time.Second, func() bool {
		f.s.mu.Lock()
		defer f.s.mu.Unlock()
		for _, p := range f.s.pending {
			if p.waiters == n {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("no held request with %d askers: %+v", n, f.s.Pending()) })
}

func (f *fixture) decide(t *testing.T, token, id string, d approval.Decision) (int, []byte) {
	t.Helper()
	return f.call(t, http.MethodPost, api.ApprovalPath(id), token, api.DecideRequest{Decision: d})
}

// asked is the outcome of a Decide run in the background.
type asked struct {
	d   approval.Decision
	err error
}

func (f *fixture) ask(ctx context.Context, req approval.Request) <-chan asked {
	ch := make(chan asked, 1)
	go func() {
		d, err := f.s.Decide(ctx, req)
		ch <- asked{d, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan asked) asked {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("Decide did not return")
		return asked{}
	}
}

// auditLines returns the supervisor's lines of the merged audit, decoded.
func (f *fixture) auditLines(t *testing.T) []map[string]any {
	t.Helper()
	var es []api.AuditEntry
	f.get(t, api.PathAudit, f.operator, &es)
	var out []map[string]any
	for _, e := range es {
		var m map[string]any
		if err := json.Unmarshal(e.Record, &m); err != nil {
			t.Fatalf("audit record %s: %v", e.Record, err)
		}
		m["_source"] = e.Source
		out = append(out, m)
	}
	return out
}

// decided finds the approval.decided audit line for subject.
func decided(lines []map[string]any, subject string) []map[string]any {
	var out []map[string]any
	for _, l := range lines {
		if l["event"] == "approval.decided" && l["subject"] == subject {
			out = append(out, l)
		}
	}
	return out
}

// stream is a live ?follow=1 response read line by line.
type stream struct {
	resp  *http.Response
	lines chan []byte
}

func (f *fixture) follow(t *testing.T, path, token string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != api.ContentTypeNDJSON {
		t.Errorf("stream content type %q", ct)
	}
	st := &stream{resp: resp, lines: make(chan []byte, 4096)}
	go func() {
		defer close(st.lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			st.lines <- bytes.Clone(sc.Bytes())
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return st
}

// next returns the next line, failing after a generous deadline.
func (st *stream) next(t *testing.T) []byte {
	t.Helper()
	select {
	case l, ok := <-st.lines:
		if !ok {
			t.Fatal("the stream ended")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no line on the stream")
		return nil
	}
}

func listenLocal() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// str is a decoded JSON string, or "".
func str(v any) string {
	s, _ := v.(string)
	return s
}
