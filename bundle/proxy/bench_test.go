package proxy

import (
	"io"
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
