package stage

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker-bottle/docker-bottle/plan"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

type fakeNetworks []string

func (f fakeNetworks) NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error) {
	var res client.NetworkListResult
	for _, s := range f {
		var n network.Summary
		n.IPAM.Config = []network.IPAMConfig{{Subnet: netip.MustParsePrefix(s)}}
		res.Items = append(res.Items, n)
	}
	return res, nil
}

func routes(ps ...string) func() ([]netip.Prefix, error) {
	return func() ([]netip.Prefix, error) {
		var out []netip.Prefix
		for _, p := range ps {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out, nil
	}
}

func TestAllocatorSkipsEngineNetworksAndRoutes(t *testing.T) {
	a := &Allocator{
		Pool:   []netip.Prefix{netip.MustParsePrefix("10.9.0.0/22")},
		Dir:    t.TempDir(),
		Engine: fakeNetworks{"10.9.0.0/24", "10.9.1.128/25"},
		Routes: routes("10.9.2.0/23"),
	}
	if _, err := a.Reserve(context.Background(), "x"); err == nil {
		t.Fatal("every /24 of 10.9.0.0/22 overlaps something, yet one was reserved")
	} else if !strings.Contains(err.Error(), "no free /24") {
		t.Fatalf("error %v", err)
	}
	a.Routes = routes("10.9.3.0/24")
	s, err := a.Reserve(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	want := plan.NewSubnet(netip.MustParsePrefix("10.9.2.0/24"))
	if s != want || s.Gateway.String() != "10.9.2.1" || s.Bundle.String() != "10.9.2.2" {
		t.Fatalf("got %+v, want %+v", s, want)
	}
}

func TestAllocatorPeekReserveRelease(t *testing.T) {
	a := &Allocator{Pool: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/23")}, Dir: t.TempDir(), Routes: routes()}
	ctx := context.Background()
	peek, _ := a.Peek(ctx)
	if entries, _ := os.ReadDir(a.Dir); len(entries) != 0 {
		t.Fatal("Peek wrote a reservation")
	}
	s1, err := a.Reserve(ctx, "one")
	if err != nil || s1 != peek {
		t.Fatalf("Reserve %v %v, Peek said %v", s1, err, peek)
	}
	s2, err := a.Reserve(ctx, "two")
	if err != nil || s2.Prefix == s1.Prefix {
		t.Fatalf("second reservation %v %v", s2, err)
	}
	if _, err := a.Reserve(ctx, "three"); err == nil {
		t.Fatal("pool of two /24s gave a third")
	}
	// Release by a non-owner is a no-op; by the owner frees the subnet.
	a.Release(s1.Prefix, "two")
	if _, err := a.Reserve(ctx, "three"); err == nil {
		t.Fatal("a non-owner released a reservation")
	}
	if err := a.Release(s1.Prefix, "one"); err != nil {
		t.Fatal(err)
	}
	if s3, err := a.Reserve(ctx, "three"); err != nil || s3.Prefix != s1.Prefix {
		t.Fatalf("after release: %v %v", s3, err)
	}
}

func TestAllocatorReclaimsStaleReservations(t *testing.T) {
	dir := t.TempDir()
	alive := map[string]bool{"live": true}
	a := &Allocator{Pool: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/23")}, Dir: dir, Routes: routes(),
		Alive: func(o string) bool { return alive[o] }}
	ctx := context.Background()
	s1, _ := a.Reserve(ctx, "live")
	s2, _ := a.Reserve(ctx, "gone")
	if _, err := a.Reserve(ctx, "new"); err != nil {
		t.Fatalf("the reservation of a gone bottle was not reclaimed: %v", err)
	}
	data, _ := os.ReadFile(a.file(s2.Prefix))
	if string(data) != "new" {
		t.Fatalf("reclaimed file says %q", data)
	}
	data, _ = os.ReadFile(a.file(s1.Prefix))
	if string(data) != "live" {
		t.Fatalf("a live reservation was touched: %q", data)
	}
}

func TestAllocatorConcurrentGoroutines(t *testing.T) {
	dir := t.TempDir()
	const n = 32
	var wg sync.WaitGroup
	got := make([]netip.Prefix, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A separate allocator each, as separate runs would have.
			a := &Allocator{Pool: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}, Dir: dir, Routes: routes()}
			s, err := a.Reserve(context.Background(), fmt.Sprintf("b%d", i))
			got[i], errs[i] = s.Prefix, err
		}()
	}
	wg.Wait()
	seen := map[netip.Prefix]int{}
	for i, p := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if j, dup := seen[p]; dup {
			t.Fatalf("bottles %d and %d both got %s", j, i, p)
		}
		seen[p] = i
	}
}

// TestAllocatorConcurrentProcesses runs allocations in separate processes
// (this test binary re-executed), as two `docker bottle run` would.
func TestAllocatorConcurrentProcesses(t *testing.T) {
	if dir := os.Getenv("BOTTLE_TEST_ALLOC_DIR"); dir != "" {
		a := &Allocator{Pool: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}, Dir: dir, Routes: routes()}
		for i := 0; i < 8; i++ {
			s, err := a.Reserve(context.Background(), os.Getenv("BOTTLE_TEST_OWNER")+fmt.Sprint(i))
			if err != nil {
				fmt.Println("ERR", err)
				os.Exit(1)
			}
			fmt.Println(s.Prefix)
		}
		os.Exit(0)
	}
	dir := t.TempDir()
	const procs = 6
	outs := make([][]byte, procs)
	var wg sync.WaitGroup
	for i := 0; i < procs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestAllocatorConcurrentProcesses$")
			cmd.Env = append(os.Environ(), "BOTTLE_TEST_ALLOC_DIR="+dir, fmt.Sprintf("BOTTLE_TEST_OWNER=p%d-", i))
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("process %d: %v\n%s", i, err, out)
			}
			outs[i] = out
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	total := 0
	for _, out := range outs {
		for _, line := range strings.Fields(string(out)) {
			if !strings.Contains(line, "/24") {
				continue
			}
			if seen[line] {
				t.Fatalf("%s handed out twice", line)
			}
			seen[line] = true
			total++
		}
	}
	if total != procs*8 {
		t.Fatalf("%d reservations, want %d", total, procs*8)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != total {
		t.Fatalf("%d reservation files for %d reservations", len(files), total)
	}
}

func TestParsePool(t *testing.T) {
	if _, err := ParsePool("10.0.0.0/25"); err == nil {
		t.Error("a /25 pool was accepted")
	}
	if _, err := ParsePool("fd00::/64"); err == nil {
		t.Error("an IPv6 pool was accepted")
	}
	ps, err := ParsePool(" 10.1.0.0/16, 10.2.3.0/24 ")
	if err != nil || len(ps) != 2 {
		t.Fatalf("%v %v", ps, err)
	}
}

func TestHostRoutesReadsThisHost(t *testing.T) {
	rs, err := HostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rs {
		if r.Contains(netip.MustParseAddr("127.0.0.1")) {
			found = true
		}
		if r.Bits() == 0 {
			t.Errorf("the default route %s is in the list", r)
		}
	}
	if !found {
		t.Errorf("loopback missing from host routes %v", rs)
	}
}
