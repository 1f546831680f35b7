// Command ceiling is the yardstick of the load benchmark: a bare net/http
// server answering every request with a fixed JSON body. What it sustains on
// a machine is the most any HTTP service written with net/http can, so
// Samplit's throughput is reported as a share of it.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18079", "listen address")
	flag.Parse()
	body := []byte(`{"unit_id":"user-123","variant":"green","payload":{"color":"green"},"new":true}`)
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // read the body as a real handler would
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})))
}
