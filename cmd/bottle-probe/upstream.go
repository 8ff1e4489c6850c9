package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// runUpstream is a stand-in for a host on the internet, for `docker bottle
// check` and the end-to-end tests: it says who it is, and on /secret it
// answers 200 only when the request carries a header whose value hashes to
// the expected sha256, so a check can prove the proxy added a secret
// without the secret ever travelling back to the bottle.
func runUpstream(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	name := fs.String("name", "upstream", "name this host answers with")
	header := fs.String("secret-header", "", "header /secret checks")
	sum := fs.String("secret-sha256", "", "sha256 (hex) the header's value must have")
	cert := fs.String("cert", "", "TLS certificate (PEM) for :443")
	key := fs.String("key", "", "TLS key (PEM) for :443")
	listen := fs.String("listen", ":80", "address of the plain HTTP server (:0 for any free port)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	want, err := hex.DecodeString(*sum)
	if err != nil || (*header != "") != (len(want) == sha256.Size) {
		return errors.New("usage: bottle-probe upstream [--name N] [--secret-header H --secret-sha256 HEX] [--cert F --key F] [--listen ADDR]")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/secret", func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get(*header)))
		if *header == "" || subtle.ConstantTimeCompare(got[:], want) != 1 {
			http.Error(w, "the expected secret did not arrive", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "secret arrived at %s\n", *name)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", *name)
	})
	servers := []*http.Server{{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	if *cert != "" {
		servers = append(servers, &http.Server{Addr: ":443", Handler: mux, ReadHeaderTimeout: 10 * time.Second})
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "upstream %s listening on %s\n", *name, ln.Addr())
		go func() {
			if i == 1 {
				errc <- s.ServeTLS(ln, *cert, *key)
			} else {
				errc <- s.Serve(ln)
			}
		}()
	}
	select {
	case <-ctx.Done():
		for _, s := range servers {
			s.Close()
		}
		return nil
	case err := <-errc:
		return err
	}
}
