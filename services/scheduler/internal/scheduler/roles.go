package scheduler

import (
	"context"
	"maps"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/tlsx"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// handoffParams are what a cross-site handoff changes on a workload.
var handoffParams = []string{pipeline.ParamHandoffID, pipeline.ParamHandoffTo, pipeline.ParamHandoffFrom, pipeline.ParamHandoffAfter}

// mayPut lets an administrator define any workload, and an operator only
// hand one off between sites: a remote copy of another site's workload
// (home_site set), or this site's workload with nothing changed but the
// handoff params and where it runs. Without TLS (-insecure-plaintext)
// nobody is checked.
func mayPut(ctx context.Context, stored, wl *cefiotv1.Workload) error {
	id, err := tlsx.CallerIdentity(ctx)
	if err != nil || access.IsAdministrator(id) || wl.GetHomeSite() != "" {
		return nil
	}
	if stored != nil && sameButHandoff(stored, wl) {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "%s may only hand workloads off between sites; defining or changing %q is an administrator's (admin/*)", id, wl.GetName())
}

// mayDelete lets an administrator delete any workload, and an operator
// only a remote copy (the end of a handoff back).
func mayDelete(ctx context.Context, stored *cefiotv1.Workload) error {
	id, err := tlsx.CallerIdentity(ctx)
	if err != nil || access.IsAdministrator(id) || stored == nil || stored.GetHomeSite() != "" {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "%s may not delete workload %q: that is an administrator's (admin/*)", id, stored.GetName())
}

func sameButHandoff(a, b *cefiotv1.Workload) bool {
	strip := func(w *cefiotv1.Workload) *cefiotv1.Workload {
		c := proto.Clone(w).(*cefiotv1.Workload)
		c.Params = maps.Clone(c.Params)
		for _, k := range handoffParams {
			delete(c.Params, k)
		}
		if len(c.Params) == 0 {
			c.Params = nil
		}
		c.Site = ""
		return c
	}
	return proto.Equal(strip(a), strip(b))
}
