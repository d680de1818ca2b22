// Command containerd-overlay-bench measures containerd 1.6's own overlay
// snapshotter (github.com/containerd/containerd/snapshots/overlay), called in
// process, on a fresh root under /var/tmp. It is the baseline that
// overlaysnap's snapshotter benchmarks (benches/snapshotter.rs) are compared
// against; see README.md beside this file.
//
// Build it in GOPATH mode against Debian's packaged sources (run.sh does).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/overlay"
)

var (
	duration   = flag.Duration("duration", 5*time.Second, "wall-clock budget of each op's loop, untimed setup included")
	maxN       = flag.Int("n", 0, "stop each op's loop after this many iterations as well (0: no cap)")
	parentDir  = flag.String("dir", "/var/tmp", "directory in which the temporary snapshotter roots are made (must not be tmpfs)")
	walkN      = flag.Int("walk", 10000, "number of View snapshots (plus the committed base) that Walk goes over")
	nFiles     = flag.Int("files", 1000, "files written into the active snapshot before the timed Commit")
	fileSize   = flag.Int("file-size", 512, "size in bytes of each of those files")
	clients    = flag.Int("clients", 8, "goroutines in the concurrent rows")
	async      = flag.Bool("async-remove", true, "pass overlay.AsynchronousRemove, as containerd's overlayfs plugin always does")
	keep       = flag.Bool("keep", false, "keep the temporary roots instead of removing them at the end")
	onlyFilter = flag.String("only", "", "run only the ops whose name contains this string")
)

var ctx = context.Background()

var keySeq uint64

func fresh(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, atomic.AddUint64(&keySeq, 1))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "fatal:", err)
		os.Exit(1)
	}
}

// result is one printed row.
type result struct {
	name  string
	lat   []time.Duration // one per timed op
	total time.Duration   // time ops/s is computed over
}

func header() {
	fmt.Printf("%-26s %8s %11s %11s %11s %12s\n", "op", "count", "mean_us", "p50_us", "p99_us", "ops/s")
}

func (r result) print() {
	if len(r.lat) == 0 {
		fmt.Printf("%-26s %8d (no samples)\n", r.name, 0)
		return
	}
	s := append([]time.Duration(nil), r.lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	pct := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(s) {
			i = len(s) - 1
		}
		return s[i]
	}
	total := r.total
	if total == 0 {
		total = sum
	}
	fmt.Printf("%-26s %8d %11.2f %11.2f %11.2f %12.1f\n", r.name, len(s),
		us(sum)/float64(len(s)), us(pct(0.50)), us(pct(0.99)),
		float64(len(s))/total.Seconds())
}

// loop runs setup (untimed) then op (timed) until the wall-clock budget or
// the iteration cap is reached. ops/s is count over the summed timed regions.
func loop(name string, setup func(i int) interface{}, op func(i int, arg interface{})) result {
	r := result{name: name}
	start := time.Now()
	for i := 0; ; i++ {
		if time.Since(start) >= *duration || (*maxN > 0 && i >= *maxN) {
			break
		}
		var arg interface{}
		if setup != nil {
			arg = setup(i)
		}
		t := time.Now()
		op(i, arg)
		r.lat = append(r.lat, time.Since(t))
	}
	return r
}

// concurrent runs op in *clients goroutines until the budget or cap; ops/s
// is the total count over the wall-clock time of the whole run.
func concurrent(name string, op func()) result {
	var (
		mu    sync.Mutex
		all   []time.Duration
		wg    sync.WaitGroup
		count int64
	)
	start := time.Now()
	deadline := start.Add(*duration)
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				if *maxN > 0 && atomic.AddInt64(&count, 1) > int64(*maxN) {
					break
				}
				t := time.Now()
				op()
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return result{name: name, lat: all, total: time.Since(start)}
}

type bench struct {
	sn   snapshots.Snapshotter
	root string
}

var roots []string

// open makes a fresh snapshotter on a fresh root, with the committed base
// layer "base" (Prepare "base-key", Commit "base").
func open(tag string) *bench {
	dir, err := os.MkdirTemp(*parentDir, "containerd-overlay-bench-"+tag+"-")
	must(err)
	roots = append(roots, dir)
	root := filepath.Join(dir, "root")
	var opts []overlay.Opt
	if *async {
		opts = append(opts, overlay.AsynchronousRemove)
	}
	sn, err := overlay.NewSnapshotter(root, opts...)
	must(err)
	_, err = sn.Prepare(ctx, "base-key", "")
	must(err)
	must(sn.Commit(ctx, "base", "base-key"))
	return &bench{sn: sn, root: root}
}

func (b *bench) close() { must(b.sn.Close()) }

// upperDir finds the directory an active snapshot's changes go to from its
// mounts: the bind mount's source (no parent) or overlay's upperdir= option.
func upperDir(ms []mount.Mount) string {
	if len(ms) != 1 {
		must(fmt.Errorf("expected one mount, got %d", len(ms)))
	}
	m := ms[0]
	if m.Type == "bind" {
		return m.Source
	}
	for _, o := range m.Options {
		if strings.HasPrefix(o, "upperdir=") {
			return strings.TrimPrefix(o, "upperdir=")
		}
	}
	must(fmt.Errorf("no upper dir in mount %+v", m))
	return ""
}

func fsType(path string) string {
	best, typ := "", "?"
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return typ
	}
	defer f.Close()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		real = path
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		mp := fields[1]
		if (real == mp || strings.HasPrefix(real, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, typ = mp, fields[2]+" (device "+fields[0]+", mounted on "+mp+")"
		}
	}
	return typ
}

func kernel() string {
	b, err := os.ReadFile("/proc/version")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func want(name string) bool { return *onlyFilter == "" || strings.Contains(name, *onlyFilter) }

func main() {
	flag.Parse()
	fs := fsType(*parentDir)
	if strings.HasPrefix(fs, "tmpfs") {
		must(fmt.Errorf("%s is on tmpfs; pass -dir on a disk file system", *parentDir))
	}
	fmt.Printf("containerd overlay snapshotter bench (github.com/containerd/containerd/snapshots/overlay, Debian golang-github-containerd-containerd-dev)\n")
	fmt.Printf("kernel:   %s\n", kernel())
	fmt.Printf("go:       %s, GOMAXPROCS=%d, NumCPU=%d\n", runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("root dir: %s (a fresh containerd-overlay-bench-* root per group)\n", *parentDir)
	fmt.Printf("fs type:  %s\n", fs)
	fmt.Printf("options:  async-remove=%v duration=%v n=%d walk=%d files=%dx%dB clients=%d\n",
		*async, *duration, *maxN, *walkN, *nFiles, *fileSize, *clients)
	fmt.Printf("times are per op in microseconds; ops/s = count / summed timed regions (one client) or count / wall time (concurrent rows)\n\n")
	header()
	began := time.Now()
	defer func() {
		if !*keep {
			for _, d := range roots {
				os.RemoveAll(d)
			}
		}
	}()

	// One client, one root: the same layout as benches/snapshotter.rs.
	{
		b := open("single")
		sn := b.sn
		// aboveBase is the untimed setup of a row: a fresh Active key above base.
		aboveBase := func(prefix string) func(int) interface{} {
			return func(int) interface{} {
				k := fresh(prefix)
				_, err := sn.Prepare(ctx, k, "base")
				must(err)
				return k
			}
		}
		if want("prepare-no-parent") {
			loop("prepare-no-parent", nil, func(i int, _ interface{}) {
				_, err := sn.Prepare(ctx, fresh("pn"), "")
				must(err)
			}).print()
		}
		if want("prepare-parent") {
			loop("prepare-parent", nil, func(i int, _ interface{}) {
				_, err := sn.Prepare(ctx, fresh("p"), "base")
				must(err)
			}).print()
		}
		if want("commit-empty") {
			loop("commit-empty", aboveBase("c"), func(i int, arg interface{}) {
				k := arg.(string)
				must(sn.Commit(ctx, k+"-done", k))
			}).print()
		}
		if name := fmt.Sprintf("commit-%d-files", *nFiles); want(name) {
			content := make([]byte, *fileSize)
			for i := range content {
				content[i] = 7
			}
			loop(name, func(i int) interface{} {
				k := fresh("f")
				ms, err := sn.Prepare(ctx, k, "base")
				must(err)
				dir := upperDir(ms)
				for j := 0; j < *nFiles; j++ {
					must(os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%d", j)), content, 0644))
				}
				return k
			}, func(i int, arg interface{}) {
				k := arg.(string)
				must(sn.Commit(ctx, k+"-done", k))
			}).print()
		}
		cleaner, hasCleanup := sn.(snapshots.Cleaner)
		if want("remove") {
			loop("remove", aboveBase("r"), func(i int, arg interface{}) {
				must(sn.Remove(ctx, arg.(string)))
			}).print()
			if hasCleanup {
				must(cleaner.Cleanup(ctx)) // reclaim what the row above left, untimed
			}
		}
		if hasCleanup && want("cleanup") {
			loop("cleanup(1-removed)", func(i int) interface{} {
				must(sn.Remove(ctx, aboveBase("r")(i).(string)))
				return nil
			}, func(i int, _ interface{}) {
				must(cleaner.Cleanup(ctx))
			}).print()
		}
		if want("remove+cleanup") {
			loop("remove+cleanup", aboveBase("r"), func(i int, arg interface{}) {
				must(sn.Remove(ctx, arg.(string)))
				if hasCleanup {
					must(cleaner.Cleanup(ctx))
				}
			}).print()
		}

		// An active snapshot with one parent, for Stat, Mounts and Usage.
		_, err := sn.Prepare(ctx, "active", "base")
		must(err)
		reads := []struct {
			name string
			op   func() error
		}{
			{"stat", func() error { _, err := sn.Stat(ctx, "active"); return err }},
			{"mounts", func() error { _, err := sn.Mounts(ctx, "active"); return err }},
			{"usage-active", func() error { _, err := sn.Usage(ctx, "active"); return err }},
			{"usage-committed", func() error { _, err := sn.Usage(ctx, "base"); return err }},
		}
		for _, r := range reads {
			if want(r.name) {
				op := r.op
				loop(r.name, nil, func(int, interface{}) { must(op()) }).print()
			}
		}
		b.close()
	}

	// Walk over *walkN Views of the base plus the base itself, on a root of
	// their own (the layout of benches/snapshotter.rs's walk group).
	if want("walk") {
		b := open("walk")
		t := time.Now()
		for i := 0; i < *walkN; i++ {
			_, err := b.sn.View(ctx, fmt.Sprintf("view-%05d", i), "base")
			must(err)
		}
		fmt.Fprintf(os.Stderr, "(walk setup: %d Views in %v, untimed)\n", *walkN, time.Since(t).Round(time.Millisecond))
		loop(fmt.Sprintf("walk-%d", *walkN+1), nil, func(i int, _ interface{}) {
			n := 0
			must(b.sn.Walk(ctx, func(context.Context, snapshots.Info) error {
				n++
				return nil
			}))
			if n != *walkN+1 {
				must(fmt.Errorf("walk saw %d snapshots, want %d", n, *walkN+1))
			}
		}).print()
		b.close()
	}

	// Concurrent clients on a root of their own.
	if want("concurrent") || want("clients") {
		b := open("clients")
		sn := b.sn
		concurrent(fmt.Sprintf("%d-clients-prepare", *clients), func() {
			_, err := sn.Prepare(ctx, fresh("t"), "base")
			must(err)
		}).print()
		concurrent(fmt.Sprintf("%d-clients-prepare+commit", *clients), func() {
			k := fresh("t")
			_, err := sn.Prepare(ctx, k, "base")
			must(err)
			must(sn.Commit(ctx, k+"-done", k))
		}).print()
		b.close()
	}
	fmt.Printf("\ntotal wall time: %v\n", time.Since(began).Round(time.Millisecond))
}
