package proxy

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// chunkReader returns its data in reads of the given sizes, cycling.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := c.sizes[c.i%len(c.sizes)]
	c.i++
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func testRedactor(pairs ...string) *redactor {
	var ss []secret
	for i := 0; i < len(pairs); i += 2 {
		ss = append(ss, secret{Secret: Secret{Placeholder: pairs[i+1]}, value: pairs[i]})
	}
	return newRedactor(ss)
}

// naiveRedact is the reference: leftmost match, longest at one position,
// over the whole input at once.
func naiveRedact(r *redactor, in []byte) []byte {
	var out []byte
	for i := 0; i < len(in); {
		matched := false
		for _, p := range r.pairs { // longest first
			if bytes.HasPrefix(in[i:], p.value) {
				out = append(out, p.repl...)
				i += len(p.value)
				matched = true
				break
			}
		}
		if !matched {
			out = append(out, in[i])
			i++
		}
	}
	return out
}

func TestRedactReaderAcrossReadBoundaries(t *testing.T) {
	const secret = "sk-live-9d8c7b6a5f4e3d2c1b0a"
	r := testRedactor(secret, "PLACEHOLDER", "abcdef", "", "cd", "[cd]")
	inputs := []string{
		"",
		secret,
		"before " + secret + " middle " + secret + secret + " after",
		strings.Repeat("x", 70000) + secret + strings.Repeat("y", 33000) + secret,
		"sk-live-9d8c7b6a5f4e3d2c1b0", // a prefix only: passes as is
		"sk-live-sk-live-9d8c7b6a5f4e3d2c1b0a",
		"abcdef abcd cdef abcabcdef ab",
		strings.Repeat("a", 5) + "bcdef",
	}
	for _, in := range inputs {
		want := naiveRedact(r, []byte(in))
		for _, sizes := range [][]int{{1}, {2}, {3}, {7}, {27}, {28}, {29}, {1, 100}, {32 << 10}, {1 << 20}} {
			got, err := io.ReadAll(r.reader(&chunkReader{data: []byte(in), sizes: sizes}))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("input %.60q in reads of %v:\n got %.200q\nwant %.200q", in, sizes, got, want)
			}
			if strings.Contains(in, secret) && bytes.Contains(got, []byte(secret)) {
				t.Fatalf("secret left in output of %.60q", in)
			}
		}
	}
	if want := "[redacted by docker bottle]"; string(naiveRedact(r, []byte("abcdef"))) != want {
		t.Errorf("a secret without placeholder becomes %q, want %q", naiveRedact(r, []byte("abcdef")), want)
	}
}

func TestRedactReaderPassesDataAsItArrives(t *testing.T) {
	// A stream (server-sent events) must not be held back beyond the
	// longest value's (or encoded form's) length: each read returns what
	// cannot start a match.
	r := testRedactor("0123456789", "XXXXXXXXXX")
	if r.maxLen != 20 { // the hex form
		t.Fatalf("maxLen = %d, want 20", r.maxLen)
	}
	pr, pw := io.Pipe()
	rr := r.reader(pr)
	const in = "data: hello world, it is a fine day\n\n"
	go pw.Write([]byte(in))
	buf := make([]byte, 100)
	n, err := rr.Read(buf)
	if want := in[:len(in)-19]; err != nil || string(buf[:n]) != want {
		t.Fatalf("first read = %q, %v; want all but the last 19 bytes", buf[:n], err)
	}
	pw.Close()
	rest, _ := io.ReadAll(rr)
	if string(rest) != in[len(in)-19:] {
		t.Fatalf("rest = %q", rest)
	}
}

// TestInterceptionRedactsResponses runs a real TLS upstream that echoes the
// injected secret back in a header, the status line, trailers and the body,
// written in pieces that split the value across chunks and TLS records,
// with and without Content-Length and gzip.
func TestInterceptionRedactsResponses(t *testing.T) {
	// As long as secretValue, in every encoded form too (the same
	// characters that escape, at the same places).
	const samePH = "sk-live-PLACEHOLDERsamelen00"
	if len(samePH) != len(secretValue) {
		t.Fatalf("test placeholder is %d bytes, secret %d", len(samePH), len(secretValue))
	}
	e := newInterceptEnv(t, func(c *Config) {
		// plain.example.test becomes intercepted in this test.
		c.Secrets = append(c.Secrets, Secret{Host: "plain.example.test", Header: "X-Api-Key", Placeholder: samePH, ValueFile: c.Secrets[1].ValueFile})
	})
	var acceptEnc []string
	e.up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		acceptEnc = append(acceptEnc, r.Header.Get("Accept-Encoding"))
		v := r.Header.Get("X-Api-Key") + r.Header.Get("Authorization")
		mode := r.URL.Query().Get("mode")
		body := "echo: " + v + " | again: " + v + " | end"
		w.Header().Set("X-Echo", "key="+v)
		switch mode {
		case "length":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		case "gzip":
			w.Header().Set("Content-Encoding", mode)
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write([]byte(body))
			zw.Close()
			w.Write(b.Bytes())
			return
		case "head":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			return
		default:
			w.Header().Set("Trailer", "X-Trailer-Echo")
		}
		// Split the value across writes: each Flush ends a chunk (and a TLS
		// record), the value straddling two of them.
		cut := len("echo: ") + len(v)/2
		for _, piece := range []string{body[:cut], body[cut : cut+3], body[cut+3 : cut+len(v)], body[cut+len(v):]} {
			io.WriteString(w, piece)
			w.(http.Flusher).Flush()
		}
		if mode == "" {
			w.Header().Set("X-Trailer-Echo", v)
		}
	})
	c := e.tp.client(e.bottleCA)
	get := func(host, mode, method string, h http.Header) (*http.Response, string) {
		t.Helper()
		h = h.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("Accept-Encoding", "gzip") // what the agent's client asks for; the proxy asks for identity
		req, _ := http.NewRequest(method, e.url(host, "/echo?mode="+mode), nil)
		req.Header = h
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s mode %s: %v", method, host, mode, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s mode %s: reading the body: %v", host, mode, err)
		}
		if s := dumpResponse(resp, string(b)) + fmt.Sprint(resp.Trailer); strings.Contains(s, secretValue) {
			t.Errorf("%s mode %s: the secret reached the client:\n%s", host, mode, s)
		}
		return resp, string(b)
	}
	ph := http.Header{"X-Api-Key": {placeholder}}
	wantBody := func(v string) string { return "echo: " + v + " | again: " + v + " | end" }

	// Chunked, a placeholder of another length: the agent reads its own
	// placeholder back, in the body, the header and the trailer.
	resp, body := get("ph.example.test", "", "GET", ph)
	if body != wantBody(placeholder) || resp.Header.Get("X-Echo") != "key="+placeholder || resp.Trailer.Get("X-Trailer-Echo") != placeholder {
		t.Errorf("chunked: body %q, X-Echo %q, trailer %q", body, resp.Header.Get("X-Echo"), resp.Trailer.Get("X-Trailer-Echo"))
	}
	// Content-Length, length changes: the response goes out chunked.
	resp, body = get("ph.example.test", "length", "GET", ph)
	if body != wantBody(placeholder) || resp.ContentLength != -1 || len(resp.TransferEncoding) == 0 {
		t.Errorf("content-length, other length: body %q, length %d, transfer-encoding %v", body, resp.ContentLength, resp.TransferEncoding)
	}
	// Content-Length, same length: kept.
	resp, body = get("plain.example.test", "length", "GET", http.Header{"X-Api-Key": {samePH}})
	if body != wantBody(samePH) || resp.ContentLength != int64(len(body)) {
		t.Errorf("content-length, same length: body %q, length %d", body, resp.ContentLength)
	}
	// No placeholder (the proxy sets the header): the marker.
	_, body = get("api.example.test", "length", "GET", nil)
	if want := wantBody("Bearer " + redactedMarker); body != want {
		t.Errorf("no placeholder: body %q, want %q", body, want)
	}
	// gzip despite identity: decoded, redacted, sent as identity.
	resp, body = get("ph.example.test", "gzip", "GET", ph)
	if body != wantBody(placeholder) || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip: body %q, Content-Encoding %q", body, resp.Header.Get("Content-Encoding"))
	}
	// HEAD keeps the upstream's length.
	resp, _ = get("ph.example.test", "head", "HEAD", ph)
	if resp.ContentLength != int64(len(wantBody(secretValue))) || resp.Header.Get("X-Echo") != "key="+placeholder {
		t.Errorf("HEAD: length %d, X-Echo %q", resp.ContentLength, resp.Header.Get("X-Echo"))
	}
	for _, ae := range acceptEnc {
		if ae != "identity" {
			t.Errorf("upstream got Accept-Encoding %q for a host with secrets, want identity", ae)
		}
	}
	c.CloseIdleConnections()
}

// TestSecretHostsRefuseEncodingsAndRanges runs a real TLS upstream that
// echoes the injected secret in a body it encodes in ways the redactor
// cannot read, or in the range the agent asks for: none of it reaches the
// agent.
func TestSecretHostsRefuseEncodingsAndRanges(t *testing.T) {
	e := newInterceptEnv(t, nil)
	var ranges []string
	var mu sync.Mutex
	e.up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range")+"|"+r.Header.Get("If-Range"))
		mu.Unlock()
		body := "echo: " + r.Header.Get("X-Api-Key") + " | end"
		if r.URL.Path == "/range" {
			// A server that honours Range.
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader(body))
			return
		}
		for _, v := range r.URL.Query()["ce"] {
			w.Header().Add("Content-Encoding", v)
		}
		// The body is sent as is: whatever the label, the proxy must not
		// trust it to hide nothing.
		io.WriteString(w, body)
	})
	c := e.tp.client(e.bottleCA)
	ph := http.Header{"X-Api-Key": {placeholder}}
	for _, ce := range []string{"br", "zstd", "deflate", "compress", "gzip, gzip", "gzip,br", "x-gzip, identity, br"} {
		q := url.Values{"ce": strings.Split(ce, "|")}
		resp, body := do(t, c, "GET", e.url("ph.example.test", "/enc?"+q.Encode()), ph)
		if strings.Contains(dumpResponse(resp, body), secretValue) {
			t.Errorf("Content-Encoding %s: the secret reached the agent", ce)
		}
		if resp.StatusCode != 502 || !strings.Contains(body, "cannot check such a body for the secret") {
			t.Errorf("Content-Encoding %s: %d %q, want 502 saying why", ce, resp.StatusCode, body)
		}
	}
	// The same codings in separate header lines.
	resp, body := do(t, c, "GET", e.url("ph.example.test", "/enc?ce=gzip&ce=br"), ph)
	if resp.StatusCode != 502 || strings.Contains(body, secretValue) {
		t.Errorf("Content-Encoding gzip and br in two lines: %d %q", resp.StatusCode, body)
	}
	// An identity body still passes, redacted.
	if resp, body := do(t, c, "GET", e.url("ph.example.test", "/enc?ce=identity"), ph); resp.StatusCode != 200 || body != "echo: "+placeholder+" | end" {
		t.Errorf("Content-Encoding identity: %d %q", resp.StatusCode, body)
	}

	// A Range is not passed on to a host with secrets: the agent gets the
	// whole (redacted) body, never a slice cut inside the value.
	resp, body = do(t, c, "GET", e.url("ph.example.test", "/range"), http.Header{"X-Api-Key": {placeholder}, "Range": {"bytes=9-20"}, "If-Range": {`"x"`}})
	if resp.StatusCode != 200 || body != "echo: "+placeholder+" | end" {
		t.Errorf("GET with Range: %d %q, want 200 and the whole redacted body", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := ranges[len(ranges)-1]; got != "|" {
		t.Errorf("the upstream got Range|If-Range %q", got)
	}
	c.CloseIdleConnections()
	e.tp.waitAudit(map[string]any{"host": "ph.example.test", "path": "/enc", "decision": "error", "status": 502})
}

// FuzzRedact checks the streaming redaction against the whole-input
// reference for any input, secrets and read sizes.
func FuzzRedact(f *testing.F) {
	f.Add([]byte("xx sk-secret yy sk-secret"), "sk-secret", "ph", "secret", []byte{1, 3, 200})
	f.Add([]byte("abcdefcdab"), "abcdef", "", "cd", []byte{2})
	f.Fuzz(func(t *testing.T, data []byte, v1, v2, p2 string, sizes []byte) {
		if len(v1) > 64 || len(v2) > 64 {
			return
		}
		r := testRedactor(v1, "", v2, p2)
		if r == nil {
			return
		}
		var sz []int
		for _, s := range sizes {
			sz = append(sz, int(s)+1)
		}
		if len(sz) == 0 {
			sz = []int{1}
		}
		got, err := io.ReadAll(r.reader(&chunkReader{data: data, sizes: sz}))
		if err != nil {
			t.Fatal(err)
		}
		if want := naiveRedact(r, data); !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// stdForms are a value's encodings as an upstream would write them, made
// with the standard library (not with the redactor's own code), by name.
func stdForms(v string) map[string]string {
	js, _ := json.Marshal(v)
	var nb bytes.Buffer
	enc := json.NewEncoder(&nb)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	noHTML := strings.TrimSuffix(nb.String(), "\n")
	noHTML = noHTML[1 : len(noHTML)-1]
	return map[string]string{
		"json":        string(js[1 : len(js)-1]),
		"json-nohtml": noHTML,
		"json-slash":  strings.ReplaceAll(noHTML, "/", `\/`),
		"json-u002f":  strings.ReplaceAll(noHTML, "/", `\u002f`),
		"query":       url.QueryEscape(v),
		"path":        url.PathEscape(v),
		"hex":         hex.EncodeToString([]byte(v)),
		"HEX":         strings.ToUpper(hex.EncodeToString([]byte(v))),
		"b64":         base64.StdEncoding.EncodeToString([]byte(v)),
		"b64url":      base64.URLEncoding.EncodeToString([]byte(v)),
		"b64raw":      base64.RawStdEncoding.EncodeToString([]byte(v)),
		"b64rawurl":   base64.RawURLEncoding.EncodeToString([]byte(v)),
	}
}

// decodeForm is the inverse of stdForms[name].
func decodeForm(t *testing.T, name, s string) string {
	t.Helper()
	var out []byte
	var err error
	switch name {
	case "json", "json-nohtml", "json-slash", "json-u002f":
		var v string
		err = json.Unmarshal([]byte(`"`+s+`"`), &v)
		out = []byte(v)
	case "query":
		var v string
		v, err = url.QueryUnescape(s)
		out = []byte(v)
	case "path":
		var v string
		v, err = url.PathUnescape(s)
		out = []byte(v)
	case "hex", "HEX":
		out, err = hex.DecodeString(s)
	case "b64":
		out, err = base64.StdEncoding.DecodeString(s)
	case "b64url":
		out, err = base64.URLEncoding.DecodeString(s)
	case "b64raw":
		out, err = base64.RawStdEncoding.DecodeString(s)
	case "b64rawurl":
		out, err = base64.RawURLEncoding.DecodeString(s)
	default:
		t.Fatalf("unknown form %q", name)
	}
	if err != nil {
		t.Fatalf("form %s of %q: %v", name, s, err)
	}
	return string(out)
}

// A value with characters each encoding escapes.
const oddSecret = `sk/live+9d8c<7b6a>&5f4e"3d2c\1b0a=?#%x y`

func TestRedactEncodedForms(t *testing.T) {
	for _, ph := range []string{"PH/with+odd<chars>&\"\\ ok", ""} {
		r := testRedactor(oddSecret, ph)
		repl := ph
		if ph == "" {
			repl = redactedMarker
		}
		forms, replForms := stdForms(oddSecret), stdForms(repl)
		for name, f := range forms {
			in := "before " + f + " middle " + f + " after"
			want := "before " + replForms[name] + " middle " + replForms[name] + " after"
			for _, sizes := range [][]int{{1}, {2}, {7}, {1 << 20}} {
				got, err := io.ReadAll(r.reader(&chunkReader{data: []byte(in), sizes: sizes}))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Fatalf("form %s, placeholder %q, reads of %v:\n got %q\nwant %q", name, ph, sizes, got, want)
				}
			}
			if got := r.string(in); got != want {
				t.Errorf("form %s in a header: %q", name, got)
			}
		}
	}
}

// TestRedactBase64Inside checks the base64 of a larger input that holds the
// value at any offset: at most two bytes at each end of the value survive.
func TestRedactBase64Inside(t *testing.T) {
	const v = "sk-live-9d8c7b6a5f4e3d2c1b0a"
	r := testRedactor(v, "PH")
	for pre := range 6 {
		for post := range 4 {
			for _, enc := range base64Encodings {
				plain := strings.Repeat("<", pre) + v + strings.Repeat(">", post)
				in := "x " + enc.EncodeToString([]byte(plain)) + " y"
				got, err := io.ReadAll(r.reader(&chunkReader{data: []byte(in), sizes: []int{1}}))
				if err != nil {
					t.Fatal(err)
				}
				// Decode whatever base64 is left around the replacement.
				s := strings.TrimSuffix(strings.TrimPrefix(string(got), "x "), " y")
				for _, piece := range strings.FieldsFunc(s, func(r rune) bool {
					return !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_", r)
				}) {
					for k := range min(4, len(piece)) {
						p := piece[k:]
						dec, _ := enc.WithPadding(base64.NoPadding).DecodeString(p[:len(p)/4*4])
						if strings.Contains(string(dec), v[2:len(v)-2]) {
							t.Fatalf("pre %d post %d: %q still holds the value", pre, post, got)
						}
					}
				}
				if strings.Contains(s, enc.EncodeToString([]byte(v))) {
					t.Fatalf("pre %d post %d: %q", pre, post, got)
				}
			}
		}
	}
}

// TestInterceptionRedactsEncodedEchoes runs a real TLS upstream that echoes
// the header value the proxy injected, and the bare secret, in each common
// encoding, one byte per chunk: each arrives as the same encoding of what
// the agent sent (its placeholder, or the marker in the proxy's header).
func TestInterceptionRedactsEncodedEchoes(t *testing.T) {
	e := newInterceptEnv(t, func(c *Config) {
		c.Secrets = append(c.Secrets, Secret{Host: "plain.example.test", Header: "X-Api-Key", Placeholder: placeholder,
			ValueFile: writeFile(t, t.TempDir(), "odd", oddSecret)})
	})
	e.up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("X-Api-Key")
		if v == "" {
			v = r.Header.Get("Authorization")
		}
		var body strings.Builder
		for _, val := range []string{v, strings.TrimPrefix(v, "Bearer ")} {
			forms := stdForms(val)
			for _, name := range slices.Sorted(maps.Keys(forms)) {
				fmt.Fprintf(&body, "%s %s\n", name, forms[name])
			}
		}
		for _, b := range []byte(body.String()) {
			w.Write([]byte{b})
			w.(http.Flusher).Flush()
		}
	})
	c := e.tp.client(e.bottleCA)
	for _, tc := range []struct {
		host, value, sent, want string
	}{
		{"ph.example.test", secretValue, placeholder, placeholder},
		{"plain.example.test", oddSecret, placeholder, placeholder},
		{"api.example.test", secretValue, "", "Bearer " + redactedMarker},
	} {
		h := http.Header{}
		if tc.sent != "" {
			h.Set("X-Api-Key", tc.sent)
		}
		resp, body := do(t, c, "GET", e.url(tc.host, "/echo"), h)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %q", tc.host, resp.StatusCode, body)
		}
		for _, v := range []string{tc.value, "Bearer " + tc.value} {
			for name, f := range stdForms(v) {
				if strings.Contains(body, f) {
					t.Errorf("%s: form %s of the secret reached the agent:\n%s", tc.host, name, body)
				}
			}
		}
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		if len(lines) != 2*len(stdForms("")) {
			t.Fatalf("%s: %d lines:\n%s", tc.host, len(lines), body)
		}
		for i, l := range lines {
			name, enc, _ := strings.Cut(l, " ")
			want := tc.want
			if i >= len(lines)/2 {
				want = strings.TrimPrefix(want, "Bearer ")
			}
			if got := decodeForm(t, name, enc); got != want {
				t.Errorf("%s: form %s decodes to %q, want %q", tc.host, name, got, want)
			}
		}
	}
	c.CloseIdleConnections()
}

// FuzzRedactForms checks that no encoded form of a value survives the
// streaming redaction, whatever surrounds it and however it is read, and
// that the stream agrees with the whole-input reference.
func FuzzRedactForms(f *testing.F) {
	f.Add("sk/live+9d8c<7b6a>", "PH", []byte("a "), []byte(" b"), []byte{1, 5})
	f.Add("0123456789", "", []byte("0123"), []byte("6789"), []byte{3})
	f.Fuzz(func(t *testing.T, v, ph string, pre, post []byte, sizes []byte) {
		if len(v) < minEncodedLen || len(v) > 64 || len(ph) > 64 || len(pre) > 256 || len(post) > 256 || strings.Contains(ph, v) {
			return
		}
		if strings.Contains(v, "\x00") {
			return
		}
		r := testRedactor(v, ph)
		replForms := stdForms(cmp.Or(ph, redactedMarker))
		var sz []int
		for _, s := range sizes {
			sz = append(sz, int(s)+1)
		}
		if len(sz) == 0 {
			sz = []int{1}
		}
		// NULs around the form: no form of v spans one, so a match that
		// starts in pre cannot eat the form's start.
		pre, post = bytes.ReplaceAll(pre, []byte{0}, nil), bytes.ReplaceAll(post, []byte{0}, nil)
		for name, form := range stdForms(v) {
			data := slices.Concat(pre, []byte{0}, []byte(form), []byte{0}, post)
			got, err := io.ReadAll(r.reader(&chunkReader{data: data, sizes: sz}))
			if err != nil {
				t.Fatal(err)
			}
			if want := naiveRedact(r, data); !bytes.Equal(got, want) {
				t.Fatalf("form %s: got %q, want %q", name, got, want)
			}
			// Unless the same form of the replacement happens to hold it.
			mid := bytes.Split(got, []byte{0})[1]
			if bytes.Contains(mid, []byte(form)) && !strings.Contains(replForms[name], form) {
				t.Fatalf("form %s %q survives in %q", name, form, got)
			}
		}
	})
}
