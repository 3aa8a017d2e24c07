// Package sitemove moves a workload between two sites while data flows,
// talking to both sites' scheduler admin APIs. Each site keeps its own etcd
// and scheduler; this package is the coordinator (used by cefiotctl and
// the tests), and it is safe to run again after an interruption: it
// continues the handoff it finds under way.
//
// A cross-site move of enrich from its home site (the edge, whose Kafka
// cluster holds its input topic) to a remote site (the cloud):
//
//  1. The remote site gets a workload "<name>.<home>" reading the
//     forwarded copy of the input topic, told to start after handoff H.
//  2. The home workload is told to hand off at H: it writes a marker H
//     into every partition of its input topic, enriches everything before
//     it and finishes. Meanwhile the bridge forwards the input topic
//     (the bridge's topic set follows the placement).
//  3. Once the home workload finished, its site becomes the remote one:
//     the home scheduler unassigns it.
//
// Moving back home is the mirror image, with the home workload writing the
// marker and skipping up to it, and the remote one enriching up to it.
package sitemove

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Scheduler is the part of a site's scheduler admin API a move uses. The
// gRPC client (cefiotv1.SchedulerServiceClient) is one; the console calls
// the same methods through the REST gateway.
type Scheduler interface {
	GetWorkload(ctx context.Context, in *cefiotv1.GetWorkloadRequest, opts ...grpc.CallOption) (*cefiotv1.GetWorkloadResponse, error)
	PutWorkload(ctx context.Context, in *cefiotv1.PutWorkloadRequest, opts ...grpc.CallOption) (*cefiotv1.PutWorkloadResponse, error)
	DeleteWorkload(ctx context.Context, in *cefiotv1.DeleteWorkloadRequest, opts ...grpc.CallOption) (*cefiotv1.DeleteWorkloadResponse, error)
}

// Site is one site's scheduler admin API.
type Site struct {
	Name   string
	Client Scheduler
}

// Result describes a completed move.
type Result struct {
	Handoff        string
	From, To       string
	RemoteWorkload string
	// Finished is when the outgoing side reported that it reached the
	// marker in every partition.
	Finished time.Time
}

// Move moves workload name, declared in home, to site to (home.Name or
// remote.Name). progress (may be nil) receives one line per step.
func Move(ctx context.Context, home, remote Site, name, to string, progress func(string)) (*Result, error) {
	if progress == nil {
		progress = func(string) {}
	}
	if to != home.Name && to != remote.Name {
		return nil, fmt.Errorf("target site %q: must be %q or %q", to, home.Name, remote.Name)
	}
	got, err := home.Client.GetWorkload(ctx, &cefiotv1.GetWorkloadRequest{Name: name})
	if err != nil {
		return nil, fmt.Errorf("workload %s in site %s: %w", name, home.Name, err)
	}
	wl := got.GetWorkload()
	if wl.GetHomeSite() != "" {
		return nil, fmt.Errorf("workload %s in site %s was moved there from %s: run the move against its home site", name, home.Name, wl.GetHomeSite())
	}
	if wl.GetKind() != pipeline.KindEnrich {
		return nil, fmt.Errorf("workload %s is of kind %s: only enrich can move between sites (capture needs its camera, bridge and sink are per site)", name, wl.GetKind())
	}
	current := wl.GetSite()
	if current == "" {
		current = home.Name
	}
	if to == remote.Name {
		if current == remote.Name {
			return &Result{From: home.Name, To: to, RemoteWorkload: pipeline.RemoteWorkloadName(name, home.Name)}, nil
		}
		return moveOut(ctx, home, remote, wl, progress)
	}
	if current == home.Name && wl.GetParams()[pipeline.ParamHandoffFrom] == "" {
		return &Result{From: remote.Name, To: to}, nil
	}
	return moveHome(ctx, home, remote, wl, progress)
}

// newHandoffID names a handoff; the name is in Kafka headers and offset
// metadata, so it is short and has no spaces.
func newHandoffID() string {
	return "h" + strconv.FormatInt(time.Now().UnixMilli(), 36)
}

// stripHandoff returns params without the handoff keys.
func stripHandoff(params map[string]string) map[string]string {
	out := maps.Clone(params)
	if out == nil {
		out = map[string]string{}
	}
	delete(out, pipeline.ParamHandoffID)
	delete(out, pipeline.ParamHandoffTo)
	delete(out, pipeline.ParamHandoffFrom)
	delete(out, pipeline.ParamHandoffAfter)
	return out
}

func withParams(wl *cefiotv1.Workload, params map[string]string) *cefiotv1.Workload {
	c := proto.Clone(wl).(*cefiotv1.Workload)
	c.Params = params
	return c
}

func moveOut(ctx context.Context, home, remote Site, wl *cefiotv1.Workload, progress func(string)) (*Result, error) {
	id := wl.GetParams()[pipeline.ParamHandoffID]
	if wl.GetParams()[pipeline.ParamHandoffTo] != remote.Name || id == "" {
		id = newHandoffID()
	}
	res := &Result{Handoff: id, From: home.Name, To: remote.Name, RemoteWorkload: pipeline.RemoteWorkloadName(wl.GetName(), home.Name)}
	input := placement.InputTopic(wl)
	output := wl.GetParams()[pipeline.ParamOutputTopic]
	if output == "" {
		output = pipeline.TopicFramesEnriched
	}
	rp := stripHandoff(wl.GetParams())
	rp[pipeline.ParamInputTopic] = pipeline.CloudTopic(home.Name, input)
	rp[pipeline.ParamOutputTopic] = pipeline.CloudTopic(home.Name, output)
	rp[pipeline.ParamOriginSite] = home.Name
	rp[pipeline.ParamHandoffFrom] = home.Name
	rp[pipeline.ParamHandoffID] = id
	rwl := &cefiotv1.Workload{Name: res.RemoteWorkload, Kind: wl.GetKind(), Params: rp, HomeSite: home.Name}
	if _, err := remote.Client.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: rwl}); err != nil {
		return nil, fmt.Errorf("declare %s in site %s: %w", rwl.GetName(), remote.Name, err)
	}
	progress(fmt.Sprintf("%s: declared %s, starting after handoff %s", remote.Name, rwl.GetName(), id))
	// The home side stops only once the remote copy has a worker:
	// otherwise the input would wait, forwarded, for a worker that may
	// never come.
	if err := waitPlaced(ctx, remote, rwl.GetName()); err != nil {
		if wl.GetParams()[pipeline.ParamHandoffTo] == "" {
			// Nothing changed at home yet: take the declaration back.
			if _, derr := remote.Client.DeleteWorkload(context.WithoutCancel(ctx), &cefiotv1.DeleteWorkloadRequest{Name: rwl.GetName()}); derr != nil {
				err = errors.Join(err, fmt.Errorf("remove %s from site %s again: %w", rwl.GetName(), remote.Name, derr))
			}
		}
		return nil, err
	}
	progress(fmt.Sprintf("%s: %s placed", remote.Name, rwl.GetName()))
	hp := stripHandoff(wl.GetParams())
	hp[pipeline.ParamHandoffTo] = remote.Name
	hp[pipeline.ParamHandoffID] = id
	if _, err := home.Client.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: withParams(wl, hp)}); err != nil {
		return nil, fmt.Errorf("start handoff of %s in site %s: %w", wl.GetName(), home.Name, err)
	}
	progress(fmt.Sprintf("%s: %s hands off at marker %s", home.Name, wl.GetName(), id))
	if err := waitFinished(ctx, home, wl.GetName()); err != nil {
		return nil, err
	}
	res.Finished = time.Now()
	progress(fmt.Sprintf("%s: %s reached the marker in every partition", home.Name, wl.GetName()))
	moved := withParams(wl, stripHandoff(wl.GetParams()))
	moved.Site = remote.Name
	if _, err := home.Client.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: moved}); err != nil {
		return nil, fmt.Errorf("mark %s as running in site %s: %w", wl.GetName(), remote.Name, err)
	}
	progress(fmt.Sprintf("%s: %s now runs in site %s", home.Name, wl.GetName(), remote.Name))
	return res, nil
}

func moveHome(ctx context.Context, home, remote Site, wl *cefiotv1.Workload, progress func(string)) (*Result, error) {
	rname := pipeline.RemoteWorkloadName(wl.GetName(), home.Name)
	rgot, err := remote.Client.GetWorkload(ctx, &cefiotv1.GetWorkloadRequest{Name: rname})
	if err != nil && status.Code(err) != codes.NotFound {
		return nil, fmt.Errorf("workload %s in site %s: %w", rname, remote.Name, err)
	}
	id := wl.GetParams()[pipeline.ParamHandoffID]
	if wl.GetParams()[pipeline.ParamHandoffFrom] != remote.Name || id == "" {
		id = newHandoffID()
	}
	res := &Result{Handoff: id, From: remote.Name, To: home.Name, RemoteWorkload: rname}
	hp := stripHandoff(wl.GetParams())
	hp[pipeline.ParamHandoffFrom] = remote.Name
	hp[pipeline.ParamHandoffID] = id
	back := withParams(wl, hp)
	back.Site = ""
	if rgot.GetWorkload() == nil {
		// Nothing runs remotely: home continues from its own committed
		// offsets, no marker needed.
		done := withParams(wl, stripHandoff(wl.GetParams()))
		done.Site = ""
		if _, err := home.Client.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: done}); err != nil {
			return nil, fmt.Errorf("declare %s back in site %s: %w", wl.GetName(), home.Name, err)
		}
		progress(fmt.Sprintf("%s: %s runs at home again (no remote copy was declared)", home.Name, wl.GetName()))
		return res, nil
	}
	if _, err := home.Client.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: back}); err != nil {
		return nil, fmt.Errorf("declare %s back in site %s: %w", wl.GetName(), home.Name, err)
	}
	progress(fmt.Sprintf("%s: %s starts after handoff %s", home.Name, wl.GetName(), id))
	{
		rwl := rgot.GetWorkload()
		rp := stripHandoff(rwl.GetParams())
		rp[pipeline.ParamHandoffTo] = home.Name
		rp[pipeline.ParamHandoffID] = id
		if prev := rwl.GetParams()[pipeline.ParamHandoffFrom]; prev != "" {
			// Still skip up to the marker it started after, if it has
			// not passed it yet.
			rp[pipeline.ParamHandoffAfter] = rwl.GetParams()[pipeline.ParamHandoffID]
		} else if after := rwl.GetParams()[pipeline.ParamHandoffAfter]; after != "" {
			rp[pipeline.ParamHandoffAfter] = after
		}
		if _, err := remote.Client.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: withParams(rwl, rp)}); err != nil {
			return nil, fmt.Errorf("start handoff of %s in site %s: %w", rname, remote.Name, err)
		}
		progress(fmt.Sprintf("%s: %s hands off at marker %s", remote.Name, rname, id))
		if err := waitFinished(ctx, remote, rname); err != nil {
			return nil, err
		}
		res.Finished = time.Now()
		progress(fmt.Sprintf("%s: %s reached the marker in every partition", remote.Name, rname))
		if _, err := remote.Client.DeleteWorkload(ctx, &cefiotv1.DeleteWorkloadRequest{Name: rname}); err != nil {
			return nil, fmt.Errorf("remove %s from site %s: %w", rname, remote.Name, err)
		}
	}
	// The remote side read the markers, so the home side wrote them, and
	// with them (in the same transaction) its durable "skip up to the
	// marker" state: the handoff params can go, and the forwarding with
	// them.
	done := withParams(wl, stripHandoff(wl.GetParams()))
	done.Site = ""
	if _, err := home.Client.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: done}); err != nil {
		return nil, fmt.Errorf("finish handoff of %s in site %s: %w", wl.GetName(), home.Name, err)
	}
	progress(fmt.Sprintf("%s: %s runs at home again", home.Name, wl.GetName()))
	return res, nil
}

// PlaceTimeout bounds the wait for the remote site to place its copy of a
// moving workload.
const PlaceTimeout = 30 * time.Second

// ErrNotPlaced means the remote site did not place its copy of the
// workload in time (no live worker of its kind there?); nothing moved.
var ErrNotPlaced = errors.New("not placed")

// waitPlaced waits until the site's scheduler assigns the workload.
func waitPlaced(ctx context.Context, site Site, name string) error {
	pctx, cancel := context.WithTimeout(ctx, PlaceTimeout)
	defer cancel()
	err := poll(pctx, func() (bool, error) {
		got, err := site.Client.GetWorkload(pctx, &cefiotv1.GetWorkloadRequest{Name: name})
		if err != nil {
			return false, err
		}
		return got.GetAssignment() != nil, nil
	}, fmt.Sprintf("site %s to place %s", site.Name, name))
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("site %s placed no worker for %s within %s (does it have a live worker of that kind?); nothing moved: %w: %w", site.Name, name, PlaceTimeout, ErrNotPlaced, err)
	}
	return err
}

// waitFinished waits until the workload's owner reports it finished.
func waitFinished(ctx context.Context, site Site, name string) error {
	return poll(ctx, func() (bool, error) {
		got, err := site.Client.GetWorkload(ctx, &cefiotv1.GetWorkloadRequest{Name: name})
		if err != nil {
			return false, err
		}
		return got.GetClaim().GetFinished(), nil
	}, fmt.Sprintf("%s in site %s to reach the handoff marker", name, site.Name))
}

func poll(ctx context.Context, done func() (bool, error), what string) error {
	var last error
	for {
		ok, err := done()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
