// Command standin plays hosts of the internet for end-to-end tests, in a
// container on a network the test made, under the real host's name (a
// network alias) with a certificate from a CA the test controls:
//
//   - anthropic: a scripted Anthropic Messages API. A request that offers
//     the Bash tool is answered with the next Bash call of the script (the
//     --tool-command flags, in order, one per tool result the request
//     already carries); when the script is done, or for any request
//     without tools, the answer is a short text that quotes every tool
//     result, so a test sees what each call did. Streaming (SSE) and plain JSON answers are both spoken,
//     as the SDK asks. Every request must carry x-api-key (or, with
//     --auth bearer, "Authorization: Bearer", as a subscription's OAuth
//     token travels) with the value
//     whose sha256 is --key-sha256, or it gets 401: so a session that gets
//     anywhere proves the proxy injected the real key.
//   - openai: the OpenAI Responses API as Codex speaks it (over a
//     WebSocket, or SSE over HTTPS), answering every turn with a short text
//     that quotes the user's last words and names the transport. Every
//     request must carry "Authorization: Bearer KEY" with the key whose
//     sha256 is --key-sha256.
//   - npm: a registry serving one package, bottle-standin-pkg 1.0.0, whose
//     tarball it makes at start.
//
// Each request is logged to stderr in one line (never a header's value),
// which the test reads through the engine when something goes wrong.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

func main() {
	mode := flag.String("mode", "", "anthropic or npm")
	name := flag.String("name", "", "the host this stand-in plays")
	cert := flag.String("cert", "", "TLS certificate (PEM)")
	key := flag.String("key", "", "TLS key (PEM)")
	auth := flag.String("auth", "x-api-key", "anthropic: where the credential travels: x-api-key or bearer")
	keySum := flag.String("key-sha256", "", "anthropic, openai: sha256 (hex) of the API key every request must carry")
	var commands []string
	flag.Func("tool-command", "anthropic: a Bash command the scripted model asks to run (repeat for more calls)", func(v string) error {
		commands = append(commands, v)
		return nil
	})
	var seen []string
	flag.Func("seen", "anthropic: a text the model's answer says it saw when a request holds it (repeat for more)", func(v string) error {
		seen = append(seen, v)
		return nil
	})
	flag.Parse()
	log.SetFlags(log.Lmicroseconds)

	var h http.Handler
	switch *mode {
	case "anthropic":
		want, err := hex.DecodeString(*keySum)
		if err != nil || len(want) != sha256.Size || len(commands) == 0 {
			log.Fatal("anthropic needs --key-sha256 HEX and --tool-command CMD")
		}
		if *auth != "x-api-key" && *auth != "bearer" {
			log.Fatalf("unknown --auth %q", *auth)
		}
		h = &anthropic{keySum: want, commands: commands, bearer: *auth == "bearer", seen: seen}
	case "openai":
		want, err := hex.DecodeString(*keySum)
		if err != nil || len(want) != sha256.Size {
			log.Fatal("openai needs --key-sha256 HEX")
		}
		h = &openAI{keySum: want}
	case "npm":
		reg, err := newRegistry(*name)
		if err != nil {
			log.Fatal(err)
		}
		h = reg
	default:
		log.Fatalf("unknown --mode %q", *mode)
	}
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s %s", r.Method, r.Host, r.URL.RequestURI())
		h.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", ":443")
	if err != nil {
		log.Fatal(err)
	}
	// A plain-HTTP port too, so the test can see the stand-in is up.
	go func() {
		log.Fatal(http.ListenAndServe(":80", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s\n", *name)
		})))
	}()
	log.Printf("standin %s (%s) listening", *name, *mode)
	srv := &http.Server{Handler: logged, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ServeTLS(ln, *cert, *key))
}

// anthropic answers the Messages API with a script.
type anthropic struct {
	keySum   []byte
	bearer   bool
	commands []string
	// seen are texts the answer reports finding in the request (what
	// the agent sent: its instructions, the user's commands).
	seen []string
	n    atomic.Int64
}

type messagesRequest struct {
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
	Tools  []struct {
		Name string `json:"name"`
	} `json:"tools"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

func (a *anthropic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cred := r.Header.Get("x-api-key")
	if a.bearer {
		cred, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	got := sha256.Sum256([]byte(cred))
	if subtle.ConstantTimeCompare(got[:], a.keySum) != 1 {
		log.Printf("  refused: the credential is not the expected one (x-api-key present: %t, authorization present: %t)",
			r.Header.Get("x-api-key") != "", r.Header.Get("Authorization") != "")
		apiError(w, http.StatusUnauthorized, "authentication_error", "invalid credential")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages/count_tokens":
		writeJSON(w, map[string]any{"input_tokens": 42})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages":
		a.messages(w, r)
	default:
		apiError(w, http.StatusNotFound, "not_found_error", "the stand-in does not serve "+r.URL.Path)
	}
}

func (a *anthropic) messages(w http.ResponseWriter, r *http.Request) {
	var req messagesRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	offersBash := false
	for _, t := range req.Tools {
		offersBash = offersBash || t.Name == "Bash"
	}
	results := toolResults(req)
	id := fmt.Sprintf("msg_standin%04d", a.n.Add(1))
	var block map[string]any
	var input []byte
	stop := "end_turn"
	if offersBash && len(results) < len(a.commands) {
		input, _ = json.Marshal(map[string]string{"command": a.commands[len(results)], "description": "the stand-in's scripted call"})
		block = map[string]any{"type": "tool_use", "id": "toolu_" + id, "name": "Bash", "input": json.RawMessage(input)}
		stop = "tool_use"
	} else {
		text := "stand-in model: done."
		for i, r := range results {
			// Quoted, so the test sees what each call did in the bottle.
			text += fmt.Sprintf("\nstand-in model: tool call %d said: %s", i+1, strings.Join(strings.Fields(r), " "))
		}
		for _, s := range a.seen {
			if bytes.Contains(body, []byte(s)) {
				text += "\nstand-in model: saw " + s
			}
		}
		block = map[string]any{"type": "text", "text": text}
	}
	log.Printf("  model=%s stream=%t tools=%d messages=%d -> %s", req.Model, req.Stream, len(req.Tools), len(req.Messages), stop)
	usage := map[string]any{"input_tokens": 42, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
	msg := map[string]any{"id": id, "type": "message", "role": "assistant", "model": req.Model,
		"stop_reason": stop, "stop_sequence": nil, "usage": usage, "content": []any{block}}
	if !req.Stream {
		writeJSON(w, msg)
		return
	}

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("request-id", "req_"+id)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	event := func(typ string, data map[string]any) {
		data["type"] = typ
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
		flush()
	}
	start := map[string]any{"id": id, "type": "message", "role": "assistant", "model": req.Model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 42, "output_tokens": 1}}
	event("message_start", map[string]any{"message": start})
	if block["type"] == "tool_use" {
		event("content_block_start", map[string]any{"index": 0,
			"content_block": map[string]any{"type": "tool_use", "id": block["id"], "name": "Bash", "input": map[string]any{}}})
		// The arguments arrive in two pieces, as a real stream splits them.
		half := len(input) / 2
		for _, part := range []string{string(input[:half]), string(input[half:])} {
			event("content_block_delta", map[string]any{"index": 0, "delta": map[string]any{"type": "input_json_delta", "partial_json": part}})
		}
	} else {
		event("content_block_start", map[string]any{"index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
		event("content_block_delta", map[string]any{"index": 0, "delta": map[string]any{"type": "text_delta", "text": block["text"]}})
	}
	event("content_block_stop", map[string]any{"index": 0})
	event("message_delta", map[string]any{"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": 7}})
	event("message_stop", map[string]any{})
}

// toolResults are the texts of the tool results the request carries, in
// order.
func toolResults(req messagesRequest) []string {
	var texts []string
	for _, m := range req.Messages {
		var blocks []struct {
			Type    string          `json:"type"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(m.Content, &blocks) != nil {
			continue // a plain string
		}
		for _, b := range blocks {
			if b.Type != "tool_result" {
				continue
			}
			var s string
			if json.Unmarshal(b.Content, &s) == nil {
				texts = append(texts, s)
				continue
			}
			var parts []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			}
			json.Unmarshal(b.Content, &parts)
			var text string
			for _, p := range parts {
				text += p.Text
			}
			texts = append(texts, text)
		}
	}
	return texts
}

func apiError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// openAI answers the Responses API.
type openAI struct {
	keySum []byte
	n      atomic.Int64
}

func (o *openAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := sha256.Sum256([]byte(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
	if subtle.ConstantTimeCompare(got[:], o.keySum) != 1 {
		var names []string
		for k := range r.Header {
			names = append(names, k)
		}
		// Names only: a value may be a secret.
		log.Printf("  refused: the bearer token is not the expected key (headers: %s)", strings.Join(names, ","))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`+"\n")
		return
	}
	if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/models") {
		writeJSON(w, map[string]any{"object": "list", "data": []any{}})
		return
	}
	if r.URL.Path == "/v1/responses" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		o.websocket(w, r)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/responses" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"message":"not served by the stand-in","type":"invalid_request_error"}}`+"\n")
		return
	}
	var req responsesRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	o.respond(req, "https", func(data map[string]any) error {
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", data["type"], b)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		return nil
	})
}

// websocket speaks the Responses API over a WebSocket, as Codex prefers:
// each response.create message is answered with the same events the SSE
// stream carries, one message each.
func (o *openAI) websocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		log.Printf("  websocket: %v", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20)
	ctx := r.Context()
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			log.Printf("  websocket closed: %v", err)
			return
		}
		var req responsesRequest
		if err := json.Unmarshal(msg, &req); err != nil || req.Type != "response.create" {
			log.Printf("  websocket: not a response.create (%v)", err)
			continue
		}
		err = o.respond(req, "websocket", func(data map[string]any) error {
			b, _ := json.Marshal(data)
			return c.Write(ctx, websocket.MessageText, b)
		})
		if err != nil {
			log.Printf("  websocket write: %v", err)
			return
		}
	}
}

type responsesRequest struct {
	Type  string `json:"type"`
	Model string `json:"model"`
	Input []struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"input"`
}

// respond emits one turn's events: a text that quotes the user's last
// words and names the transport it came over.
func (o *openAI) respond(req responsesRequest, transport string, emit func(map[string]any) error) error {
	var said string
	for _, in := range req.Input {
		if in.Role == "user" {
			for _, c := range in.Content {
				said = c.Text
			}
		}
	}
	id := fmt.Sprintf("resp_standin%04d", o.n.Add(1))
	text := fmt.Sprintf("stand-in model heard over %s: %s", transport, strings.Join(strings.Fields(said), " "))
	log.Printf("  model=%s input=%d transport=%s -> text", req.Model, len(req.Input), transport)
	item := map[string]any{"type": "message", "id": "msg_" + id, "role": "assistant", "status": "completed",
		"content": []any{map[string]any{"type": "output_text", "text": text, "annotations": []any{}}}}
	usage := map[string]any{"input_tokens": 42, "input_tokens_details": map[string]any{"cached_tokens": 0},
		"output_tokens": 7, "output_tokens_details": map[string]any{"reasoning_tokens": 0}, "total_tokens": 49}
	for _, e := range []map[string]any{
		{"type": "response.created", "sequence_number": 0,
			"response": map[string]any{"id": id, "object": "response", "model": req.Model, "status": "in_progress", "output": []any{}}},
		{"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
			"item": map[string]any{"type": "message", "id": "msg_" + id, "role": "assistant", "status": "in_progress", "content": []any{}}},
		{"type": "response.output_text.delta", "sequence_number": 2, "output_index": 0, "content_index": 0, "item_id": "msg_" + id, "delta": text},
		{"type": "response.output_item.done", "sequence_number": 3, "output_index": 0, "item": item},
		{"type": "response.completed", "sequence_number": 4,
			"response": map[string]any{"id": id, "object": "response", "model": req.Model, "status": "completed", "output": []any{item}, "usage": usage}},
	} {
		if err := emit(e); err != nil {
			return err
		}
	}
	return nil
}

// registry serves one npm package: its packument and its tarball.
type registry struct {
	host      string
	tarball   []byte
	shasum    string
	integrity string
}

const (
	pkgName    = "bottle-standin-pkg"
	pkgVersion = "1.0.0"
)

func newRegistry(host string) (*registry, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	files := map[string]string{
		"package/package.json": fmt.Sprintf(`{"name":%q,"version":%q,"main":"index.js"}`, pkgName, pkgVersion),
		"package/index.js":     "module.exports = 'served by the stand-in registry';\n",
	}
	for _, n := range []string{"package/package.json", "package/index.js"} {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	s1 := sha1.Sum(buf.Bytes())
	s512 := sha512.Sum512(buf.Bytes())
	return &registry{host: host, tarball: buf.Bytes(), shasum: hex.EncodeToString(s1[:]),
		integrity: "sha512-" + base64.StdEncoding.EncodeToString(s512[:])}, nil
}

func (g *registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tarPath := "/" + pkgName + "/-/" + pkgName + "-" + pkgVersion + ".tgz"
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/" + pkgName:
		version := map[string]any{"name": pkgName, "version": pkgVersion, "main": "index.js",
			"dist": map[string]string{"tarball": "https://" + g.host + tarPath, "shasum": g.shasum, "integrity": g.integrity}}
		writeJSON(w, map[string]any{"name": pkgName, "dist-tags": map[string]string{"latest": pkgVersion},
			"versions": map[string]any{pkgVersion: version}})
	case tarPath:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(g.tarball)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"Not found"}`+"\n")
	}
}
