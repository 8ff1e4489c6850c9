// Command proxybench measures the egress proxy (the real `bottle-bundle
// proxy` binary) against a direct connection and against tinyproxy, on
// loopback: CONNECT throughput, small HTTPS request latency through a kept
// tunnel and through a new tunnel per request, the same through
// interception, and peak memory with many concurrent tunnels. bench/proxy.sh
// builds and runs it.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker-bottle/docker-bottle/pki"
)

var (
	bundleBin = flag.String("bundle", "bin/bottle-bundle", "bottle-bundle binary")
	tinyBin   = flag.String("tinyproxy", "/usr/bin/tinyproxy", "tinyproxy binary (empty: skip)")
	size      = flag.Int64("size", 1<<30, "bytes per throughput transfer")
	runs      = flag.Int("runs", 3, "repetitions of each throughput measurement (median reported)")
	nreq      = flag.Int("requests", 3000, "small requests per latency measurement")
	nconn     = flag.Int("newconn", 300, "requests with a new tunnel each")
	tunnels   = flag.Int("tunnels", 200, "concurrent tunnels for the memory measurement")
	sections  = flag.String("sections", "tput,lat,newconn,https,mem", "measurements to run")
	netns     = flag.String("netns", "", "network namespace to run the upstream servers in (empty: in this process, on loopback)")
	upIP      = flag.String("upstream-ip", "127.0.0.1", "address the upstream servers listen on")
	serveUp   = flag.String("serve-upstream", "", "internal: serve the upstreams with the CA in this directory, print their addresses, run until stdin closes")
)

func want(section string) bool { return slices.Contains(strings.Split(*sections, ","), section) }

const token = "bench-token"

func main() {
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "proxybench-")
	check(err)
	defer os.RemoveAll(dir)

	if *serveUp != "" {
		serveUpstreams(*serveUp)
		return
	}

	// Upstreams: a raw TCP source and an HTTPS server, the HTTPS one with a
	// certificate from a CA of the benchmark's own; in this process on
	// loopback, or in a process of their own in the namespace behind the
	// emulated link.
	upCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "upstream-ca"))
	check(err)
	var rawAddr, httpsAddr string
	upPid := 0
	if *netns == "" {
		rawAddr, httpsAddr = rawSource(*upIP), httpsServer(upCA, *upIP)
	} else {
		var stop func()
		rawAddr, httpsAddr, upPid, stop = startUpstreams(filepath.Join(dir, "upstream-ca"))
		defer stop()
	}
	_, rawPort, _ := net.SplitHostPort(rawAddr)
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)

	bottleCA, err := pki.LoadOrCreateCA(filepath.Join(dir, "bottle-ca"))
	check(err)
	upPool, bottlePool := x509.NewCertPool(), x509.NewCertPool()
	upPool.AddCert(upCA.Certificate())
	bottlePool.AddCert(bottleCA.Certificate())

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		check(os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	tokenFile := write("token", token)
	rule := fmt.Sprintf(`{"host": %q, "ports": [%s, %s], "private": true, "loopback": true}`, *upIP, rawPort, httpsPort)
	tunnelCfg := write("tunnel.json", fmt.Sprintf(`{"listen": "127.0.0.1:0", "bottle": "bench", "token_file": %q,
		"audit_file": %q, "rules": [%s]}`, tokenFile, filepath.Join(dir, "audit-tunnel.jsonl"), rule))
	interceptCfg := write("intercept.json", fmt.Sprintf(`{"listen": "127.0.0.1:0", "bottle": "bench", "token_file": %q,
		"audit_file": %q, "rules": [%s],
		"secrets": [{"host": %q, "header": "Authorization", "format": "Bearer {value}", "value_file": %q}],
		"ca_cert_file": %q, "ca_key_file": %q, "extra_ca_file": %q}`,
		tokenFile, filepath.Join(dir, "audit-intercept.jsonl"), rule, *upIP, write("secret", "bench-secret"),
		filepath.Join(dir, "bottle-ca", pki.CertFile), filepath.Join(dir, "bottle-ca", pki.KeyFile),
		write("upstream-ca.pem", string(upCA.CertPEM()))))

	rulesCfg := write("rules.json", fmt.Sprintf(`{"listen": "127.0.0.1:0", "bottle": "bench", "token_file": %q,
		"audit_file": %q, "rules": [%s, {"host": %q, "ports": [%s], "private": true, "loopback": true, "methods": ["GET"]}],
		"ca_cert_file": %q, "ca_key_file": %q, "extra_ca_file": %q}`,
		tokenFile, filepath.Join(dir, "audit-rules.jsonl"), rule, *upIP, httpsPort,
		filepath.Join(dir, "bottle-ca", pki.CertFile), filepath.Join(dir, "bottle-ca", pki.KeyFile),
		filepath.Join(dir, "upstream-ca.pem")))

	tunnelProxy := startBundle(tunnelCfg)
	defer tunnelProxy.stop()
	interceptProxy := startBundle(interceptCfg)
	defer interceptProxy.stop()
	rulesProxy := startBundle(rulesCfg)
	defer rulesProxy.stop()
	var tiny *proc
	if *tinyBin != "" {
		tiny = startTinyproxy(dir)
		defer tiny.stop()
	}

	vias := []via{{"direct", nil}, {"bottle proxy (tunnel)", tunnelProxy.url}}
	if tiny != nil {
		vias = append(vias, via{"tinyproxy", tiny.url})
	}

	if want("tput") {
		fmt.Printf("## CONNECT throughput, %d MiB download, median of %d\n\n", *size>>20, *runs)
		fmt.Println("| path | MB/s | % of direct | proxy CPU s per GiB | all CPU s per GiB | % of direct by CPU |")
		fmt.Println("|---|---|---|---|---|---|")
		pids := map[string]int{"bottle proxy (tunnel)": tunnelProxy.cmd.Process.Pid}
		if tiny != nil {
			pids["tinyproxy"] = tiny.cmd.Process.Pid
		}
		tput := map[string][]float64{}
		cpu, all := map[string]float64{}, map[string]float64{}
		for range *runs {
			for _, v := range vias {
				before, beforeAll := cpuSeconds(pids[v.name]), benchCPU(upPid)+cpuSeconds(pids[v.name])
				tput[v.name] = append(tput[v.name], throughput(rawAddr, v.proxy, *size))
				cpu[v.name] += cpuSeconds(pids[v.name]) - before
				all[v.name] += benchCPU(upPid) + cpuSeconds(pids[v.name]) - beforeAll
			}
		}
		gib := float64(*runs) * float64(*size) / (1 << 30)
		direct := median(tput["direct"])
		for _, v := range vias {
			m := median(tput[v.name])
			c := "-"
			if pids[v.name] != 0 {
				c = fmt.Sprintf("%.2f", cpu[v.name]/gib)
			}
			fmt.Printf("| %s | %.0f | %.0f%% | %s | %.2f | %.0f%% |\n", v.name, m, 100*m/direct, c, all[v.name]/gib, 100*all["direct"]/all[v.name])
		}
	}

	vias2 := append(slices.Clone(vias), via{"bottle proxy (intercepted)", interceptProxy.url})
	httpsURL := "https://" + httpsAddr + "/small"
	if want("lat") {
		fmt.Printf("\n## Small HTTPS requests (100-byte body), %d sequential on one kept-alive connection\n\n", *nreq)
		fmt.Println("| path | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |")
		fmt.Println("|---|---|---|---|---|---|")
		lats := map[string][]time.Duration{}
		for _, v := range vias2 {
			roots := upPool
			if strings.Contains(v.name, "intercepted") {
				roots = bottlePool
			}
			lats[v.name] = latencies(httpsURL, v.proxy, roots, *nreq, true)
		}
		printLat(names(vias2), lats)
	}

	if want("newconn") {
		fmt.Printf("\n## Small HTTPS requests, %d sequential, a new connection (CONNECT + TLS handshake) each\n\n", *nconn)
		fmt.Println("| path | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |")
		fmt.Println("|---|---|---|---|---|---|")
		lats := map[string][]time.Duration{}
		for _, v := range vias2 {
			roots := upPool
			if strings.Contains(v.name, "intercepted") {
				roots = bottlePool
			}
			lats[v.name] = latencies(httpsURL, v.proxy, roots, *nconn, false)
		}
		printLat(names(vias2), lats)
	}

	if want("https") {
		fmt.Printf("\n## HTTPS download of %d MiB through interception, median of %d\n\n", *size>>20, *runs)
		fmt.Println("| path | MB/s | % of direct | proxy CPU s per GiB | all CPU s per GiB | % of direct by CPU |")
		fmt.Println("|---|---|---|---|---|---|")
		bigURL := "https://" + httpsAddr + "/bytes?n=" + strconv.FormatInt(*size, 10)
		ht, all, own := map[string][]float64{}, map[string]float64{}, map[string]float64{}
		suites := map[string]string{}
		paths := []struct {
			name  string
			proxy *proc
			roots *x509.CertPool
		}{{"direct", nil, upPool}, {"bottle proxy (tunnel)", tunnelProxy, upPool}, {"bottle proxy (intercepted)", interceptProxy, bottlePool},
			{"bottle proxy (intercepted, rules only)", rulesProxy, bottlePool}}
		for range *runs {
			for _, pa := range paths {
				var u *url.URL
				pid := 0
				if pa.proxy != nil {
					u, pid = pa.proxy.url, pa.proxy.cmd.Process.Pid
				}
				before, ownBefore := benchCPU(upPid)+cpuSeconds(pid), cpuSeconds(pid)
				mbs, suite := httpsThroughput(bigURL, *size, u, pa.roots)
				ht[pa.name] = append(ht[pa.name], mbs)
				all[pa.name] += benchCPU(upPid) + cpuSeconds(pid) - before
				own[pa.name] += cpuSeconds(pid) - ownBefore
				suites[pa.name] = suite
			}
		}
		gib := float64(*runs) * float64(*size) / (1 << 30)
		hd := median(ht["direct"])
		for _, pa := range paths {
			m := median(ht[pa.name])
			c := "-"
			if pa.proxy != nil {
				c = fmt.Sprintf("%.2f", own[pa.name]/gib)
			}
			fmt.Printf("| %s | %.0f | %.0f%% | %s | %.2f | %.0f%% |\n", pa.name, m, 100*m/hd, c, all[pa.name]/gib, 100*all["direct"]/all[pa.name])
		}
		fmt.Printf("\n\"intercepted\": the host has a secret (set header, no placeholder), so response bodies are redacted and go out chunked; \"rules only\": intercepted for a method rule, no secret, bodies pass as sent.\n")
		fmt.Printf("TLS negotiated by the client: %s direct, %s with the intercepting proxy", suites["direct"], suites["bottle proxy (intercepted)"])
		if s := upstreamSuite.Load(); s != nil {
			fmt.Printf("; the upstream saw %s last", *s)
		}
		fmt.Println(".")
	}

	if !want("mem") {
		return
	}
	fmt.Printf("\n## Memory with %d concurrent tunnels (each downloading 4 MiB, all held open together)\n\n", *tunnels)
	fmt.Println("| proxy | RSS before | peak RSS (VmHWM) |")
	fmt.Println("|---|---|---|")
	fresh := startBundle(tunnelCfg)
	before := rssKiB(fresh.cmd.Process.Pid, "VmRSS")
	manyTunnels(rawAddr, fresh.url, *tunnels, 4<<20)
	fmt.Printf("| bottle proxy | %.1f MiB | %.1f MiB |\n", float64(before)/1024, float64(rssKiB(fresh.cmd.Process.Pid, "VmHWM"))/1024)
	fresh.stop()
	if tiny != nil {
		freshTiny := startTinyproxy(dir)
		before := rssKiB(freshTiny.cmd.Process.Pid, "VmRSS")
		manyTunnels(rawAddr, freshTiny.url, *tunnels, 4<<20)
		fmt.Printf("| tinyproxy | %.1f MiB | %.1f MiB |\n", float64(before)/1024, float64(rssKiB(freshTiny.cmd.Process.Pid, "VmHWM"))/1024)
		freshTiny.stop()
	}
}

type via struct {
	name  string
	proxy *url.URL
}

func names(vs []via) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.name)
	}
	return out
}

func printLat(names []string, lats map[string][]time.Duration) {
	d50, d99 := pct(lats["direct"], 50), pct(lats["direct"], 99)
	for _, n := range names {
		l := lats[n]
		var sum time.Duration
		for _, x := range l {
			sum += x
		}
		p50, p99 := pct(l, 50), pct(l, 99)
		fmt.Printf("| %s | %.0f | %.3f | %.3f | %+.3f | %+.3f |\n", n, float64(len(l))/sum.Seconds(),
			ms(p50), ms(p99), ms(p50-d50), ms(p99-d99))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(l []time.Duration, p int) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchCPU is the CPU time of this process and of the upstream process
// (when the upstreams run in one of their own).
func benchCPU(upPid int) float64 { return cpuSeconds(os.Getpid()) + cpuSeconds(upPid) }

// serveUpstreams is the upstream process behind the emulated link: it loads
// the CA the parent made, serves, prints the two addresses and runs until
// its stdin closes (the parent ended).
func serveUpstreams(caDir string) {
	ca, err := pki.LoadOrCreateCA(caDir)
	check(err)
	fmt.Println(rawSource(*upIP), httpsServer(ca, *upIP))
	io.Copy(io.Discard, os.Stdin)
}

// startUpstreams runs this binary again inside the namespace as the
// upstream process.
func startUpstreams(caDir string) (rawAddr, httpsAddr string, pid int, stop func()) {
	self, err := os.Executable()
	check(err)
	cmd := exec.Command("ip", "netns", "exec", *netns, self, "-serve-upstream", caDir, "-upstream-ip", *upIP)
	stdin, err := cmd.StdinPipe()
	check(err)
	stdout, err := cmd.StdoutPipe()
	check(err)
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	if _, err := fmt.Fscanln(stdout, &rawAddr, &httpsAddr); err != nil {
		log.Fatalf("upstream process in namespace %s: %v", *netns, err)
	}
	// ip netns exec replaces itself with the command: the pid is the
	// upstream process's own.
	return rawAddr, httpsAddr, cmd.Process.Pid, func() {
		stdin.Close()
		cmd.Wait()
	}
}

// rawSource serves raw TCP: a client sends an 8-byte big-endian count and
// gets that many bytes, then EOF.
func rawSource(ip string) string {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	check(err)
	buf := make([]byte, 256<<10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var hdr [8]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				for n := int64(binary.BigEndian.Uint64(hdr[:])); n > 0; {
					w, err := c.Write(buf[:min(n, int64(len(buf)))])
					if err != nil {
						return
					}
					n -= int64(w)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func httpsServer(ca *pki.CA, ip string) string {
	m, err := pki.NewMinter(ca, 0)
	check(err)
	leaf, err := m.Leaf(ip)
	check(err)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	check(err)
	small := []byte(strings.Repeat("x", 100))
	big := make([]byte, 256<<10)
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{*leaf}},
		ErrorLog:  log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/small":
				w.Write(small)
			case "/bytes":
				s := tlsName(r.TLS)
				upstreamSuite.Store(&s)
				n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
				w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
				for n > 0 {
					k, err := w.Write(big[:min(n, int64(len(big)))])
					if err != nil {
						return
					}
					n -= int64(k)
				}
			}
		}),
	}
	go srv.ServeTLS(ln, "", "")
	return ln.Addr().String()
}

// upstreamSuite is the TLS the in-process upstream saw on its last
// download: through interception, what the proxy negotiated upstream.
var upstreamSuite atomic.Pointer[string]

func tlsName(cs *tls.ConnectionState) string {
	if cs == nil {
		return "no TLS"
	}
	return tls.VersionName(cs.Version) + " " + tls.CipherSuiteName(cs.CipherSuite)
}

// dialVia opens a TCP connection to addr, directly or through a CONNECT.
func dialVia(addr string, proxy *url.URL) net.Conn {
	if proxy == nil {
		c, err := net.Dial("tcp", addr)
		check(err)
		return c
	}
	c, err := net.Dial("tcp", proxy.Host)
	check(err)
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", addr, addr,
		base64.StdEncoding.EncodeToString([]byte("bench:"+token)))
	// Read the response head byte by byte so no tunnel byte is consumed.
	var head []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		_, err := c.Read(b)
		check(err)
		head = append(head, b[0])
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 200") && !strings.HasPrefix(string(head), "HTTP/1.0 200") {
		log.Fatalf("CONNECT %s via %s: %s", addr, proxy.Host, head)
	}
	return c
}

// throughput downloads n bytes from the raw source and returns MB/s.
func throughput(addr string, proxy *url.URL, n int64) float64 {
	c := dialVia(addr, proxy)
	defer c.Close()
	buf := make([]byte, 256<<10)
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(n))
	start := time.Now()
	_, err := c.Write(hdr[:])
	check(err)
	var got int64
	for got < n {
		k, err := c.Read(buf)
		got += int64(k)
		if err != nil {
			break
		}
	}
	el := time.Since(start)
	if got != n {
		log.Fatalf("throughput via %v: got %d of %d bytes", proxy, got, n)
	}
	return float64(n) / el.Seconds() / 1e6
}

func client(proxy *url.URL, roots *x509.CertPool, keepAlive bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: !keepAlive,
		ForceAttemptHTTP2: false,
	}
	if proxy != nil {
		tr.Proxy = http.ProxyURL(proxy)
	}
	return &http.Client{Transport: tr}
}

func latencies(u string, proxy *url.URL, roots *x509.CertPool, n int, keepAlive bool) []time.Duration {
	c := client(proxy, roots, keepAlive)
	defer c.CloseIdleConnections()
	get := func() time.Duration {
		start := time.Now()
		resp, err := c.Get(u)
		check(err)
		_, err = io.Copy(io.Discard, resp.Body)
		check(err)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			log.Fatalf("GET %s via %v: %s", u, proxy, resp.Status)
		}
		return time.Since(start)
	}
	for range min(n/10, 100) {
		get()
	}
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = get()
	}
	return out
}

// httpsThroughput downloads u (which names its size, n) and returns MB/s
// and the TLS version and cipher suite the client negotiated. Through
// interception of a host with secrets the body comes chunked (the redaction
// may change its length), so the count is checked against n.
func httpsThroughput(u string, n int64, proxy *url.URL, roots *x509.CertPool) (float64, string) {
	c := client(proxy, roots, false)
	start := time.Now()
	resp, err := c.Get(u)
	check(err)
	buf := make([]byte, 256<<10)
	var got int64
	for {
		k, err := resp.Body.Read(buf)
		got += int64(k)
		if err == io.EOF {
			break
		}
		check(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || got != n {
		log.Fatalf("HTTPS download via %v: %s, %d bytes", proxy, resp.Status, got)
	}
	return float64(got) / time.Since(start).Seconds() / 1e6, tlsName(resp.TLS)
}

// manyTunnels opens n tunnels at once, downloads per bytes through each,
// and closes them only when all are done.
func manyTunnels(addr string, proxy *url.URL, n int, per int64) {
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialVia(addr, proxy)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var hdr [8]byte
			binary.BigEndian.PutUint64(hdr[:], uint64(per))
			c.Write(hdr[:])
			n, _ := io.Copy(io.Discard, c)
			if n != per {
				log.Fatalf("tunnel got %d of %d bytes", n, per)
			}
		}()
	}
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
}

func rssKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// cpuSeconds is the user+system CPU time of a process (and its threads).
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

type proc struct {
	cmd *exec.Cmd
	url *url.URL
}

func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// startBundle runs `bottle-bundle proxy --config cfg` and reads its address
// from the line it prints.
func startBundle(cfg string) *proc {
	cmd := exec.Command(*bundleBin, "proxy", "--config", cfg)
	stderr, err := cmd.StderrPipe()
	check(err)
	check(cmd.Start())
	buf := make([]byte, 256)
	n, err := stderr.Read(buf)
	check(err)
	line := strings.TrimSpace(string(buf[:n]))
	addr, ok := strings.CutPrefix(line, "egress proxy listening on ")
	if !ok {
		log.Fatalf("bottle-bundle proxy: %s", line)
	}
	go io.Copy(os.Stderr, stderr)
	return &proc{cmd: cmd, url: &url.URL{Scheme: "http", Host: addr, User: url.UserPassword("bench", token)}}
}

func startTinyproxy(dir string) *proc {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(dir, fmt.Sprintf("tinyproxy-%d.conf", port))
	check(os.WriteFile(conf, []byte(fmt.Sprintf(`User nobody
Group nogroup
Port %d
Listen 127.0.0.1
Timeout 600
MaxClients 1000
LogLevel Critical
Allow 127.0.0.1
`, port)), 0o644))
	cmd := exec.Command(*tinyBin, "-d", "-c", conf)
	cmd.Stderr = io.Discard
	cmd.Stdout = io.Discard
	check(cmd.Start())
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 10*time.Second {
			log.Fatalf("tinyproxy did not start on port %d", port)
		}
	}
	return &proc{cmd: cmd, url: &url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", port)}}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
