package bridge

import (
	"context"

	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

type adminServer struct {
	cefiotv1.UnimplementedBridgeServiceServer
	proc    *service.Process
	metrics *metrics
}

func (s *adminServer) GetStatus(context.Context, *cefiotv1.GetStatusRequest) (*cefiotv1.GetStatusResponse, error) {
	v := service.CounterValue
	return &cefiotv1.GetStatusResponse{Status: s.proc.Status(map[string]int64{
		"records_forwarded": v(s.metrics.records),
		"bytes_forwarded":   v(s.metrics.bytes),
		"transactions":      v(s.metrics.txns),
		"aborts":            v(s.metrics.aborts),
	})}, nil
}
