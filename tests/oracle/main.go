// Command containerd-overlay-oracle answers snapshot requests with containerd
// 1.6's own overlay snapshotter (github.com/containerd/containerd/snapshots/overlay),
// so that tests/containerd_oracle.rs can compare overlaysnap's reference model
// with containerd itself. It is built by build.sh beside this file, in GOPATH
// mode against Debian's packaged sources.
//
// Protocol: one JSON request per line on stdin, one JSON answer per line on
// stdout, in order. Requests:
//
//	{"op":"prepare"|"view","key":K,"parent":P,"labels":{...}}   (P "" = no parent)
//	{"op":"commit","name":N,"key":K,"labels":{...}}
//	{"op":"remove"|"stat"|"usage","key":K}
//	{"op":"update","key":K,"labels":{...},"paths":[...]}
//	{"op":"walk","filters":[...]}
//
// Answers: {"ok":true} plus "info" (stat, update), "infos" (walk, in the
// snapshotter's order, omitted when empty) or "usage" (usage); or {"ok":false,"err":KIND,"msg":...}
// where KIND is the errdefs class of the error: "not found", "already exists",
// "invalid argument", "failed precondition", "unavailable", "not implemented",
// "canceled", "deadline exceeded", or "unknown" when errdefs knows none. The
// snapshotter's root is a fresh directory under -dir, removed at end of input.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/overlay"
)

type request struct {
	Op      string            `json:"op"`
	Key     string            `json:"key"`
	Parent  string            `json:"parent"`
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels"`
	Paths   []string          `json:"paths"`
	Filters []string          `json:"filters"`
}

type info struct {
	Name   string            `json:"name"`
	Kind   string            `json:"kind"`
	Parent string            `json:"parent"`
	Labels map[string]string `json:"labels"`
}

type usage struct {
	Size   int64 `json:"size"`
	Inodes int64 `json:"inodes"`
}

type answer struct {
	Ok    bool   `json:"ok"`
	Err   string `json:"err,omitempty"`
	Msg   string `json:"msg,omitempty"`
	Info  *info  `json:"info,omitempty"`
	Infos []info `json:"infos,omitempty"`
	Usage *usage `json:"usage,omitempty"`
}

// kind names err's errdefs class.
func kind(err error) string {
	switch {
	case errdefs.IsNotFound(err):
		return "not found"
	case errdefs.IsAlreadyExists(err):
		return "already exists"
	case errdefs.IsInvalidArgument(err):
		return "invalid argument"
	case errdefs.IsFailedPrecondition(err):
		return "failed precondition"
	case errdefs.IsUnavailable(err):
		return "unavailable"
	case errdefs.IsNotImplemented(err):
		return "not implemented"
	case errdefs.IsCanceled(err):
		return "canceled"
	case errdefs.IsDeadlineExceeded(err):
		return "deadline exceeded"
	}
	return "unknown"
}

func toInfo(i snapshots.Info) info {
	labels := i.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return info{Name: i.Name, Kind: strings.ToLower(i.Kind.String()), Parent: i.Parent, Labels: labels}
}

func serve(ctx context.Context, sn snapshots.Snapshotter, r request) (a answer, err error) {
	switch r.Op {
	case "prepare":
		_, err = sn.Prepare(ctx, r.Key, r.Parent, snapshots.WithLabels(r.Labels))
	case "view":
		_, err = sn.View(ctx, r.Key, r.Parent, snapshots.WithLabels(r.Labels))
	case "commit":
		err = sn.Commit(ctx, r.Name, r.Key, snapshots.WithLabels(r.Labels))
	case "remove":
		err = sn.Remove(ctx, r.Key)
	case "stat":
		var i snapshots.Info
		if i, err = sn.Stat(ctx, r.Key); err == nil {
			ii := toInfo(i)
			a.Info = &ii
		}
	case "update":
		var i snapshots.Info
		if i, err = sn.Update(ctx, snapshots.Info{Name: r.Key, Labels: r.Labels}, r.Paths...); err == nil {
			ii := toInfo(i)
			a.Info = &ii
		}
	case "walk":
		a.Infos = []info{}
		err = sn.Walk(ctx, func(_ context.Context, i snapshots.Info) error {
			a.Infos = append(a.Infos, toInfo(i))
			return nil
		}, r.Filters...)
	case "usage":
		var u snapshots.Usage
		if u, err = sn.Usage(ctx, r.Key); err == nil {
			a.Usage = &usage{Size: u.Size, Inodes: u.Inodes}
		}
	default:
		fmt.Fprintf(os.Stderr, "oracle: unknown op %q\n", r.Op)
		os.Exit(2)
	}
	return a, err
}

func main() {
	dir := flag.String("dir", os.TempDir(), "directory in which the snapshotter's fresh root is made")
	flag.Parse()

	root, err := os.MkdirTemp(*dir, "containerd-overlay-oracle-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "oracle:", err)
		os.Exit(2)
	}
	defer os.RemoveAll(root)
	// AsynchronousRemove, as containerd's overlayfs plugin always passes.
	sn, err := overlay.NewSnapshotter(root, overlay.AsynchronousRemove)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oracle: NewSnapshotter:", err)
		os.Exit(2)
	}
	defer sn.Close()

	ctx := context.Background()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			fmt.Fprintln(os.Stderr, "oracle: bad request:", err)
			os.Exit(2)
		}
		a, err := serve(ctx, sn, r)
		if err != nil {
			a.Err, a.Msg = kind(err), err.Error()
			a.Infos, a.Info, a.Usage = nil, nil, nil
		} else {
			a.Ok = true
		}
		if err := enc.Encode(a); err != nil {
			fmt.Fprintln(os.Stderr, "oracle:", err)
			os.Exit(2)
		}
		out.Flush()
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "oracle: reading stdin:", err)
		os.Exit(2)
	}
}
