package bridge

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

type adminServer struct {
	cefiotv1.UnimplementedBridgeServiceServer
	proc    *service.Process
	metrics *metrics
	state   *state
}

func (s *adminServer) worker() *cefiotv1.WorkerStatus {
	v := service.CounterValue
	return s.proc.Status(map[string]int64{
		"records_forwarded": v(s.metrics.records),
		"bytes_forwarded":   v(s.metrics.bytes),
		"transactions":      v(s.metrics.txns),
		"aborts":            v(s.metrics.aborts),
		"session_restarts":  v(s.metrics.restarts),
	})
}

func (s *adminServer) GetStatus(context.Context, *cefiotv1.GetStatusRequest) (*cefiotv1.GetStatusResponse, error) {
	return &cefiotv1.GetStatusResponse{Status: s.worker()}, nil
}

func (s *adminServer) GetBridgeStatus(context.Context, *cefiotv1.GetBridgeStatusRequest) (*cefiotv1.GetBridgeStatusResponse, error) {
	return s.state.status(s.worker()), nil
}

// pauseConfirmWait bounds how long Pause waits for the sessions to commit
// their open transactions and stop.
const pauseConfirmWait = 10 * time.Second

func (s *adminServer) Pause(ctx context.Context, _ *cefiotv1.PauseRequest) (*cefiotv1.PauseResponse, error) {
	s.state.setPaused(true)
	wctx, cancel := context.WithTimeout(ctx, pauseConfirmWait)
	defer cancel()
	halted := s.state.awaitHalted(wctx)
	s.proc.Logger.Info("forwarding paused by the admin API", "halted", halted)
	return &cefiotv1.PauseResponse{Paused: true, Halted: halted}, nil
}

func (s *adminServer) Resume(context.Context, *cefiotv1.ResumeRequest) (*cefiotv1.ResumeResponse, error) {
	s.state.setPaused(false)
	s.proc.Logger.Info("forwarding resumed by the admin API")
	return &cefiotv1.ResumeResponse{Paused: false}, nil
}

func (s *adminServer) SetRateLimit(_ context.Context, req *cefiotv1.SetRateLimitRequest) (*cefiotv1.SetRateLimitResponse, error) {
	if req.GetBytesPerSecond() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "bytes_per_second: %d is negative; want 0 (no cap) or a positive rate", req.GetBytesPerSecond())
	}
	s.state.limiter.SetRate(req.GetBytesPerSecond())
	s.metrics.rateLimit.Set(float64(req.GetBytesPerSecond()))
	s.proc.Logger.Info("rate limit set by the admin API", "bytes_per_second", req.GetBytesPerSecond())
	return &cefiotv1.SetRateLimitResponse{BytesPerSecond: s.state.limiter.Rate()}, nil
}

func (s *adminServer) ListTopics(context.Context, *cefiotv1.ListTopicsRequest) (*cefiotv1.ListTopicsResponse, error) {
	return s.state.topics(), nil
}
