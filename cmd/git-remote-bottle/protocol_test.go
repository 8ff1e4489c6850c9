package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeGate answers as the gate does in protocol version 2, echoing each
// request, and checks the token and headers of each.
func fakeGate(t *testing.T) *gate {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, _ := r.BasicAuth(); pass != "tok" || r.Header.Get("Git-Protocol") != "version=2" {
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		switch {
		case r.URL.Path == "/repo.git/info/refs" && r.URL.Query().Get("service") == "git-upload-pack":
			io.WriteString(w, "001e# service=git-upload-pack\n0000000eversion 2\n0000")
		case r.URL.Path == "/repo.git/git-upload-pack" && r.Header.Get("Content-Type") == "application/x-git-upload-pack-request":
			body, _ := io.ReadAll(r.Body)
			io.WriteString(w, "answer:"+string(body))
		default:
			http.Error(w, "not found", http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	return newGate("tok", func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	})
}

// The helper's side of a fetch: capabilities, stateless-connect with the
// advertisement without smart HTTP's header, then each request relayed and
// its answer ended by a response-end packet, until git closes.
func TestSpeakRelaysAFetch(t *testing.T) {
	in := "capabilities\nstateless-connect git-upload-pack\n" +
		"0014command=ls-refs\n0000" + "0012command=fetch\n00010009done\n0000"
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	if err := speak(context.Background(), bufio.NewReader(strings.NewReader(in)), w, fakeGate(t)); err != nil {
		t.Fatal(err)
	}
	want := "stateless-connect\n\n" + "\n000eversion 2\n0000" +
		"answer:0014command=ls-refs\n0000" + "0002" + "answer:0012command=fetch\n00010009done\n0000" + "0002"
	if out.String() != want {
		t.Errorf("said\n%q\nwant\n%q", out.String(), want)
	}
}

// Pushing, a wrong token and a bad request are errors that say so.
func TestSpeakRefuses(t *testing.T) {
	g := fakeGate(t)
	for in, want := range map[string]string{
		"capabilities\nconnect git-receive-pack\n":                 "only fetched from",
		"stateless-connect git-receive-pack\n":                     "only fetched from",
		"fetch 0000 HEAD\n":                                        "does not speak",
		"stateless-connect git-upload-pack\nzzzz":                  "bad pkt-line length",
		"stateless-connect git-upload-pack\n0014command=ls-refs\n": "reading git's request",
	} {
		err := speak(context.Background(), bufio.NewReader(strings.NewReader(in)), bufio.NewWriter(io.Discard), g)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
	g.token = "wrong"
	err := speak(context.Background(), bufio.NewReader(strings.NewReader("stateless-connect git-upload-pack\n")), bufio.NewWriter(io.Discard), g)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong token: %v", err)
	}
}

// Whatever git or the gate send, the parsers end without panic, and a
// request is never larger than the bound.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("0014command=ls-refs\n0000"))
	f.Add([]byte("001e# service=git-upload-pack\n0000000eversion 2\n0000"))
	f.Add([]byte("0001000200030004"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := readRequest(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && (len(req) > maxRequest || !bytes.HasSuffix(req, []byte("0000"))) {
			t.Errorf("request of %d bytes not ended by a flush", len(req))
		}
		v2Advertisement(b) //nolint:errcheck // must only not panic
	})
}
