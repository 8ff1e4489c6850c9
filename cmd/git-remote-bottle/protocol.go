package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// maxRequest bounds one request of git's (its wants and haves): far more
// than a fetch of any real repository sends, and a bound on memory.
const maxRequest = 16 << 20

// The gate's repository, as the plugin's git remote and the agent name it
// (the gate serves any path prefix).
const repoPath = "/repo.git"

// gate is a client of a bottle's git gate.
type gate struct {
	token string
	hc    *http.Client
}

func newGate(token string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *gate {
	// No proxy of the environment may see the token.
	return &gate{token: token, hc: &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: dial}}}
}

// do sends one request to the gate's repository and returns its answer,
// which the caller closes, or the gate's refusal as an error.
func (g *gate) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://gate"+repoPath+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("bottle", g.token)
	req.Header.Set("Git-Protocol", "version=2")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
		req.Header.Set("Accept", "application/x-git-upload-pack-result")
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the bottle's gate: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()                                //nolint:errcheck // only its start is read
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10)) //nolint:errcheck // the status says enough
		return nil, fmt.Errorf("the gate answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// advertisement is the gate's capability advertisement (protocol version
// 2), bounded: it is a few lines.
func (g *gate) advertisement(ctx context.Context) ([]byte, error) {
	resp, err := g.do(ctx, http.MethodGet, "/info/refs?service=git-upload-pack", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() //nolint:errcheck // read whole
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxRequest))
	if err != nil {
		return nil, fmt.Errorf("reading the gate's advertisement: %w", err)
	}
	return v2Advertisement(b)
}

// speak answers git's commands on in, on out: the capabilities, then one
// stateless-connect to the gate's upload-pack.
func speak(ctx context.Context, in *bufio.Reader, out *bufio.Writer, g *gate) error {
	for {
		line, err := in.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" {
			return nil
		}
		if err != nil {
			return err
		}
		switch cmd := strings.TrimSuffix(line, "\n"); {
		case cmd == "":
			return nil
		case cmd == "capabilities":
			out.WriteString("stateless-connect\n\n") //nolint:errcheck // Flush says
		case cmd == "stateless-connect git-upload-pack":
			adv, err := g.advertisement(ctx)
			if err != nil {
				return err
			}
			out.WriteString("\n") //nolint:errcheck // Flush says
			out.Write(adv)        //nolint:errcheck // Flush says
			if err := out.Flush(); err != nil {
				return err
			}
			return relay(ctx, in, out, g)
		case strings.HasPrefix(cmd, "stateless-connect "), strings.HasPrefix(cmd, "connect "):
			return fmt.Errorf("%s: a bottle's gate is only fetched from (the agent pushes to it): use git fetch", cmd)
		default:
			return fmt.Errorf("git asked %q, which this helper does not speak (git 2.26 or newer speaks protocol version 2 to it)", cmd)
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
}

// v2Advertisement is the gate's capability advertisement without the
// "# service=" header smart HTTP puts before it.
func v2Advertisement(b []byte) ([]byte, error) {
	rest := b
	if pkt, after, ok := nextPkt(rest); ok && strings.HasPrefix(string(pkt), "# service=") {
		rest = after
		for {
			pkt, after, ok := nextPkt(rest)
			if !ok {
				return nil, errors.New("the gate's advertisement ends in its header")
			}
			rest = after
			if pkt == nil {
				break
			}
		}
	}
	if pkt, _, ok := nextPkt(rest); !ok || string(pkt) != "version 2\n" {
		return nil, errors.New("the gate did not answer in git protocol version 2")
	}
	return rest, nil
}

// nextPkt splits b's first pkt-line off: its payload (nil for the special
// packets 0000-0002), the rest, and whether b had a whole one.
func nextPkt(b []byte) (payload, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	switch {
	case err != nil:
		return nil, nil, false
	case n < 4:
		return nil, b[4:], true
	case int(n) > len(b):
		return nil, nil, false
	}
	return b[4:n], b[n:], true
}

// relay sends each of git's requests (pkt-lines up to a flush) to the
// gate and writes its answer back, ended by a response-end packet, until
// git closes its side.
func relay(ctx context.Context, in *bufio.Reader, out *bufio.Writer, g *gate) error {
	for {
		req, err := readRequest(in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp, err := g.do(ctx, http.MethodPost, "/git-upload-pack", req)
		if err != nil {
			return err
		}
		// A pack streams through, never whole in memory.
		_, err = io.Copy(out, resp.Body)
		resp.Body.Close() //nolint:errcheck,gosec // read to its end or failed
		if err != nil {
			return fmt.Errorf("reading the gate's answer: %w", err)
		}
		out.WriteString("0002") //nolint:errcheck // Flush says
		if err := out.Flush(); err != nil {
			return err
		}
	}
}

// readRequest reads pkt-lines up to and with a flush packet; io.EOF when
// git sent nothing more.
func readRequest(in *bufio.Reader) ([]byte, error) {
	var req bytes.Buffer
	hdr := make([]byte, 4)
	for {
		if _, err := io.ReadFull(in, hdr); err != nil {
			if errors.Is(err, io.EOF) && req.Len() == 0 {
				return nil, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading git's request: %w", err)
		}
		n, err := strconv.ParseUint(string(hdr), 16, 16)
		if err != nil {
			return nil, fmt.Errorf("git's request has a bad pkt-line length %q", hdr)
		}
		req.Write(hdr)
		if n == 0 {
			return req.Bytes(), nil
		}
		if n < 4 {
			continue
		}
		if req.Len()+int(n) > maxRequest {
			return nil, fmt.Errorf("git's request is larger than %d bytes", maxRequest)
		}
		if _, err := io.CopyN(&req, in, int64(n)-4); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading git's request: %w", err)
		}
	}
}
