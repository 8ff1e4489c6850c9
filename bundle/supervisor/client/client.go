// Package client calls a bottle's supervisor over HTTP: the plugin on the
// host with the operator's token, and anything in the bottle with the
// agent's token. It imports only the supervisor's api package.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/docker-bottle/docker-bottle/bundle/approval"
	"github.com/docker-bottle/docker-bottle/bundle/supervisor/api"
)

// Client talks to one supervisor with one token.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// Option changes a Client made by New.
type Option func(*Client)

// WithHTTPClient uses hc instead of a client that never goes through a
// proxy. Its Timeout must be zero for the Follow methods to work.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client for the supervisor at addr, "HOST:PORT" (as in the
// plan's host endpoints) or an http:// URL (as in the agent's), sending
// token as a Bearer token.
func New(addr, token string, opts ...Option) (*Client, error) {
	raw := addr
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("supervisor address %q: want HOST:PORT or an http:// URL", addr)
	}
	if token == "" {
		return nil, errors.New("no token for the supervisor: every request needs one")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, token: token}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		// The supervisor is on loopback or in the bottle's own network: an
		// HTTP proxy from the environment must never see the token.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		c.hc = &http.Client{Transport: t}
	}
	return c, nil
}

// Addr is the supervisor's base URL, for messages.
func (c *Client) Addr() string { return c.base.String() }

// StatusError is an error answer of the supervisor.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("supervisor answered %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("supervisor answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// StatusCode returns the HTTP status of err when it is a StatusError, else
// 0.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// Health reads the daemons' health. An unhealthy bundle (503) is not an
// error: the answer says which daemon fails.
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var h api.Health
	resp, err := c.do(ctx, http.MethodGet, api.PathHealth, nil, nil)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return h, statusError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return h, fmt.Errorf("decoding the supervisor's health: %w", err)
	}
	return h, nil
}

// PostEvent records an event. The supervisor sets its source from the
// token, its sequence number and time.
func (c *Client) PostEvent(ctx context.Context, typ, message string, data any) (api.Event, error) {
	body := map[string]any{"type": typ}
	if message != "" {
		body["message"] = message
	}
	if data != nil {
		body["data"] = data
	}
	var ev api.Event
	err := c.call(ctx, http.MethodPost, api.PathEvents, nil, body, http.StatusCreated, &ev)
	return ev, err
}

// Events lists the kept events with a sequence number greater than after
// (0 for all). It needs the operator's token.
func (c *Client) Events(ctx context.Context, after uint64) ([]api.Event, error) {
	var evs []api.Event
	err := c.call(ctx, http.MethodGet, api.PathEvents, afterQuery(after, false), nil, http.StatusOK, &evs)
	return evs, err
}

// FollowEvents calls fn for each kept event after after, then for each new
// one, until ctx ends (it returns ctx's error), fn returns an error (it
// returns that), or the stream breaks.
func (c *Client) FollowEvents(ctx context.Context, after uint64, fn func(api.Event) error) error {
	return follow(ctx, c, api.PathEvents, after, fn)
}

// Approvals lists the requests waiting for a decision, oldest first.
func (c *Client) Approvals(ctx context.Context) ([]api.Approval, error) {
	var as []api.Approval
	err := c.call(ctx, http.MethodGet, api.PathApprovals, nil, nil, http.StatusOK, &as)
	return as, err
}

// Ask asks a human to approve a tool call and waits for the outcome: the
// operator's decision, the policy's timeout (deny), or an immediate deny
// when the bottle does not send tool calls for approval. Ending ctx
// withdraws the request (the supervisor denies and records it).
func (c *Client) Ask(ctx context.Context, subject, detail string) (api.Answer, error) {
	var out api.Answer
	err := c.call(ctx, http.MethodPost, api.PathApprovals, nil,
		api.AskRequest{Kind: approval.Tool, Subject: subject, Detail: detail}, http.StatusOK, &out)
	return out, err
}

// Decide settles a pending request. It needs the operator's token; an id
// that is not pending gives a StatusError with code 404.
func (c *Client) Decide(ctx context.Context, id string, d approval.Decision) (api.Decided, error) {
	var out api.Decided
	err := c.call(ctx, http.MethodPost, api.ApprovalPath(id), nil, api.DecideRequest{Decision: d}, http.StatusOK, &out)
	return out, err
}

// Audit lists the kept lines of the merged audit with a sequence number
// greater than after. It needs the operator's token.
func (c *Client) Audit(ctx context.Context, after uint64) ([]api.AuditEntry, error) {
	var es []api.AuditEntry
	err := c.call(ctx, http.MethodGet, api.PathAudit, afterQuery(after, false), nil, http.StatusOK, &es)
	return es, err
}

// FollowAudit is FollowEvents for the merged audit.
func (c *Client) FollowAudit(ctx context.Context, after uint64, fn func(api.AuditEntry) error) error {
	return follow(ctx, c, api.PathAudit, after, fn)
}

func afterQuery(after uint64, follow bool) url.Values {
	q := url.Values{}
	if after > 0 {
		q.Set(api.QueryAfter, strconv.FormatUint(after, 10))
	}
	if follow {
		q.Set(api.QueryFollow, "1")
	}
	return q
}

func follow[T any](ctx context.Context, c *Client, path string, after uint64, fn func(T) error) error {
	resp, err := c.do(ctx, http.MethodGet, path, afterQuery(after, true), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var v T
		if err := dec.Decode(&v); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return errors.New("the supervisor ended the stream (is the bundle stopping?)")
			}
			return fmt.Errorf("reading the supervisor's stream: %w", err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}

// call sends body (JSON, when not nil), expects want and decodes the answer
// into out.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body any, want int, out any) error {
	resp, err := c.do(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return statusError(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding the supervisor's answer to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	u := *c.base
	// path is escaped already (api.ApprovalPath), so it goes in RawPath.
	u.RawPath = c.base.EscapedPath() + path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("supervisor request path %q: %w", path, err)
	}
	u.Path = p
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("supervisor request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// The url.Error repeats the method and URL; the cause is enough.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("reaching the supervisor at %s: %w", c.base.Host, err)
	}
	return resp, nil
}

func statusError(resp *http.Response) error {
	se := &StatusError{Code: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		se.Message = e.Error
	} else {
		se.Message = strings.TrimSpace(string(b))
	}
	return se
}
