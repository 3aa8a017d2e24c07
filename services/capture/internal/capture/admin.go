package capture

import (
	"context"

	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

type adminServer struct {
	cefiotv1.UnimplementedCaptureServiceServer
	proc    *service.Process
	metrics *metrics
}

func (s *adminServer) GetStatus(context.Context, *cefiotv1.GetStatusRequest) (*cefiotv1.GetStatusResponse, error) {
	v := service.CounterValue
	return &cefiotv1.GetStatusResponse{Status: s.proc.Status(map[string]int64{
		"frames":         v(s.metrics.frames),
		"motion_frames":  v(s.metrics.motion),
		"published":      v(s.metrics.published),
		"publish_errors": v(s.metrics.failed),
	})}, nil
}
