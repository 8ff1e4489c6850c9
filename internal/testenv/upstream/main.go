// Command upstream is the stand-in for a host on the internet in end-to-end
// tests: a static HTTP (and, with certificates, HTTPS) server that answers
// who it is and echoes the request's headers, so tests can see what the
// bundle's proxy sent on.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	name := os.Getenv("UPSTREAM_NAME")
	mux := http.NewServeMux()
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(r.Header)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", name)
	})
	if cert, key := os.Getenv("UPSTREAM_CERT"), os.Getenv("UPSTREAM_KEY"); cert != "" {
		go func() { log.Fatal(http.ListenAndServeTLS(":443", cert, key, mux)) }()
	}
	log.Fatal(http.ListenAndServe(":80", mux))
}
