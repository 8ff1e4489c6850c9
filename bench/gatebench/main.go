// Command gatebench is the helper of bench/gate.sh: it generates the large
// repository for the git gate benchmark (a git fast-import stream), stages
// it with gitstage, serves `git http-backend` through Go's net/http/cgi
// for the baseline, and reads a process's peak memory.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/docker-bottle/docker-bottle/gitstage"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gatebench gen|prepare|cgi|peak ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "prepare":
		err = prepare(os.Args[2:])
	case "cgi":
		err = serveCGI(os.Args[2:])
	case "peak":
		err = peak(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatebench:", err)
		os.Exit(1)
	}
}

// gen writes a fast-import stream: a tree of dirs*files text files, then
// commits that each rewrite a chunk of a few files with fresh random text,
// so that the history is large and mostly made of deltas, like a busy
// project's.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	commits := fs.Int("commits", 20000, "number of commits")
	dirs := fs.Int("dirs", 40, "directories")
	files := fs.Int("files", 50, "files per directory")
	touch := fs.Int("touch", 4, "files changed per commit")
	chunk := fs.Int("chunk", 3300, "bytes of new random text per changed file")
	seed := fs.Int64("seed", 1, "random seed")
	fs.Parse(args)
	rng := rand.New(rand.NewSource(*seed))
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	text := func(n int) string {
		b := make([]byte, n*3/4)
		rng.Read(b)
		s := base64.StdEncoding.EncodeToString(b)
		var out strings.Builder
		for len(s) > 76 {
			out.WriteString(s[:76])
			out.WriteByte('\n')
			s = s[76:]
		}
		out.WriteString(s + "\n")
		return out.String()
	}
	type file struct {
		path  string
		lines []string
	}
	var all []*file
	for d := 0; d < *dirs; d++ {
		for f := 0; f < *files; f++ {
			all = append(all, &file{path: fmt.Sprintf("pkg%02d/sub%d/mod%02d_%03d.txt", d, f%3, d, f),
				lines: strings.SplitAfter(text(8000), "\n")})
		}
	}
	content := func(f *file) string { return strings.Join(f.lines, "") }
	when := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for c := 0; c < *commits; c++ {
		when += 600
		fmt.Fprintf(w, "commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n", c+1, when)
		msg := fmt.Sprintf("commit %d\n", c)
		fmt.Fprintf(w, "data %d\n%s", len(msg), msg)
		if c > 0 {
			fmt.Fprintf(w, "from :%d\n", c)
		}
		var changed []*file
		if c == 0 {
			changed = all
		} else {
			for i := 0; i < *touch; i++ {
				f := all[rng.Intn(len(all))]
				n := len(f.lines)
				at := rng.Intn(n)
				newLines := strings.SplitAfter(text(*chunk), "\n")
				cut := min(n-at, len(newLines))
				f.lines = append(append(append([]string{}, f.lines[:at]...), newLines...), f.lines[at+cut:]...)
				changed = append(changed, f)
			}
		}
		for _, f := range changed {
			s := content(f)
			fmt.Fprintf(w, "M 100644 inline %s\ndata %d\n%s\n", f.path, len(s), s)
		}
		if c%5000 == 4999 {
			fmt.Fprintf(w, "reset refs/tags/v%d\nfrom :%d\n\n", c/5000+1, c+1)
		}
	}
	return nil
}

func prepare(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: gatebench prepare USER_REPO DEST")
	}
	start := time.Now()
	if err := gitstage.Prepare(context.Background(), args[0], args[1]); err != nil {
		return err
	}
	fmt.Printf("%.2f\n", time.Since(start).Seconds())
	return nil
}

// serveCGI serves `git http-backend` for every request, as Apache or nginx
// would, wrapped in GNU time so that the peak memory of each request's
// process tree (http-backend, upload-pack, pack-objects) is recorded.
func serveCGI(args []string) error {
	fs := flag.NewFlagSet("cgi", flag.ExitOnError)
	root := fs.String("root", "", "GIT_PROJECT_ROOT")
	listen := fs.String("listen", "127.0.0.1:0", "address")
	mem := fs.String("mem", "", "file to append each request's peak RSS (KiB) and CPU seconds to")
	backend := fs.String("backend", "/usr/lib/git-core/git-http-backend", "git http-backend binary")
	fs.Parse(args)
	h := &cgi.Handler{Path: *backend, Env: []string{"GIT_PROJECT_ROOT=" + *root, "GIT_HTTP_EXPORT_ALL=1"},
		InheritEnv: []string{"PATH", "HOME"}}
	if *mem != "" {
		h.Path = "/usr/bin/time"
		h.Args = []string{"-a", "-o", *mem, "-f", "%M %U %S", *backend}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	srv := &http.Server{Handler: h}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// peak prints a process's peak resident set (VmHWM) in KiB.
func peak(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: gatebench peak PID")
	}
	b, err := os.ReadFile("/proc/" + args[0] + "/status")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Println(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return nil
		}
	}
	return fmt.Errorf("no VmHWM for %s", args[0])
}
