package proxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkInterceptedDownload measures a large HTTPS download through an
// intercepting proxy in process (for profiling; bench/proxy.sh measures the
// real binary against a direct connection).
func BenchmarkInterceptedDownload(b *testing.B) {
	e := newInterceptEnv(b, nil)
	c := e.tp.client(e.bottleCA)
	const n = 64 << 20
	b.SetBytes(n)
	buf := make([]byte, 256<<10)
	for b.Loop() {
		resp, err := c.Get(e.url("api.example.test", "/bytes?n="+strconv.Itoa(n)))
		if err != nil {
			b.Fatal(err)
		}
		var got int64
		for {
			k, err := resp.Body.Read(buf)
			got += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || got != n {
			b.Fatalf("%s, %d bytes", resp.Status, got)
		}
	}
}

// BenchmarkRedactReader measures the response redaction alone, over text
// (random letters, digits and punctuation in lines), with the value only
// (the redaction before encoded forms) and with the value and its forms:
//
//	go test -run='^$' -bench=RedactReader -count=5 ./bundle/proxy
func BenchmarkRedactReader(b *testing.B) {
	const value = "sk-ant-api03-Zx9_Qw8-Er7Ty6Ui5Op4As3Df2Gh1Jk0Lz" // the shape of an API key
	full := newRedactor([]secret{{Secret: Secret{Format: "Bearer {value}"}, value: value}})
	// As before encoded forms: one value, found with bytes.Index.
	exact := &redactor{pairs: []redaction{{[]byte(value), []byte(redactedMarker)}}, maxLen: len(value), short: []int{0}}
	rnd := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.:;\"{}[]/+=-_"
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = alphabet[rnd.IntN(len(alphabet))]
		if i%80 == 79 {
			data[i] = '\n'
		}
	}
	buf := make([]byte, 32<<10)
	for _, bc := range []struct {
		name string
		r    *redactor
	}{{"value", exact}, {"value+forms", full}} {
		b.Run(fmt.Sprintf("%s/%dpatterns", bc.name, len(bc.r.pairs)), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				rr := bc.r.reader(bytes.NewReader(data))
				for {
					if _, err := rr.Read(buf); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
