package scheduler

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/audit"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// Limits of ListAudit.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// ListAudit reads the newest records of the site's audit trail.
func (a *api) ListAudit(ctx context.Context, in *cefiotv1.ListAuditRequest) (*cefiotv1.ListAuditResponse, error) {
	switch in.GetResult() {
	case "", audit.ResultOK, audit.ResultRefused, audit.ResultFailed:
	default:
		return nil, invalid("result", "%q: want ok, refused or failed", in.GetResult())
	}
	limit := int(in.GetLimit())
	switch {
	case limit == 0:
		limit = defaultAuditLimit
	case limit < 0 || limit > maxAuditLimit:
		return nil, invalid("limit", "%d: want 1..%d", limit, maxAuditLimit)
	}
	if a.audit == nil {
		return nil, status.Error(codes.FailedPrecondition, "this scheduler has no audit topic: -kafka-bootstrap is not set (the trail is in its log)")
	}
	records, scanned, err := audit.Recent(ctx, *a.audit, audit.Filter{Who: in.GetWho(), Action: in.GetAction(), Result: in.GetResult()}, limit)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "audit trail: %v", err)
	}
	out := &cefiotv1.ListAuditResponse{Scanned: scanned}
	for _, r := range records {
		out.Records = append(out.Records, &cefiotv1.AuditRecord{
			Time: timestamppb.New(r.Time), Site: r.Site, Who: r.Who, Role: r.Role, Via: r.Via, Service: r.Service,
			Action: r.Action, Target: r.Target, From: r.From, Result: r.Result, Code: r.Code, Message: r.Message,
		})
	}
	return out, nil
}
