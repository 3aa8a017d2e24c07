package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// restScheduler calls a scheduler's workload methods through its REST
// gateway, so a cross-site move started from the console uses the same
// public API as everything else the console does. It implements
// sitemove.Scheduler.
type restScheduler struct {
	base   string // e.g. http://127.0.0.1:8100
	client *http.Client
}

func (s restScheduler) GetWorkload(ctx context.Context, in *cefiotv1.GetWorkloadRequest, _ ...grpc.CallOption) (*cefiotv1.GetWorkloadResponse, error) {
	out := &cefiotv1.GetWorkloadResponse{}
	return out, s.call(ctx, http.MethodGet, "/v1/workloads/"+url.PathEscape(in.GetName()), nil, out)
}

func (s restScheduler) PutWorkload(ctx context.Context, in *cefiotv1.PutWorkloadRequest, _ ...grpc.CallOption) (*cefiotv1.PutWorkloadResponse, error) {
	out := &cefiotv1.PutWorkloadResponse{}
	return out, s.call(ctx, http.MethodPut, "/v1/workloads/"+url.PathEscape(in.GetWorkload().GetName()), in.GetWorkload(), out)
}

func (s restScheduler) DeleteWorkload(ctx context.Context, in *cefiotv1.DeleteWorkloadRequest, _ ...grpc.CallOption) (*cefiotv1.DeleteWorkloadResponse, error) {
	out := &cefiotv1.DeleteWorkloadResponse{}
	return out, s.call(ctx, http.MethodDelete, "/v1/workloads/"+url.PathEscape(in.GetName()), nil, out)
}

// call sends body (may be nil) and decodes the answer into out. A gateway
// error comes back as the gRPC status it encodes, so callers can tell
// NotFound from the rest.
func (s restScheduler) call(ctx context.Context, method, path string, body, out proto.Message) error {
	var rd io.Reader
	if body != nil {
		b, err := protojson.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	actFor(ctx, req.Header)
	resp, err := s.client.Do(req)
	if err != nil {
		return status.Errorf(codes.Unavailable, "%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return status.Errorf(codes.Unavailable, "%s %s: read answer: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return gatewayError(resp.StatusCode, b)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// gatewayError turns a grpc-gateway error body ({"code": 5, "message":
// "..."}) back into a gRPC status error.
func gatewayError(httpStatus int, body []byte) error {
	var e struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Code == 0 {
		return status.Errorf(codes.Unknown, "HTTP %d: %s", httpStatus, bytes.TrimSpace(body))
	}
	return status.Error(codes.Code(e.Code), e.Message)
}
