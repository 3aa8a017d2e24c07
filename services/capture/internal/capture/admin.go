package capture

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/admin"
	"github.com/cefiot/cefiot/libs/redact"
	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

type adminServer struct {
	cefiotv1.UnimplementedCaptureServiceServer
	proc     *service.Process
	metrics  *metrics
	registry *Registry
}

func (s *adminServer) GetStatus(context.Context, *cefiotv1.GetStatusRequest) (*cefiotv1.GetStatusResponse, error) {
	v := service.CounterValue
	return &cefiotv1.GetStatusResponse{Status: s.proc.Status(map[string]int64{
		"frames":         v(s.metrics.frames),
		"motion_frames":  v(s.metrics.motion),
		"published":      v(s.metrics.published),
		"publish_errors": v(s.metrics.failed),
		"status_changes": v(s.metrics.statusChanges),
		"spooled":        v(s.metrics.spooled),
		"spool_drained":  v(s.metrics.drained),
		"spool_dropped":  v(s.metrics.spoolDropped),
	})}, nil
}

func invalid(field, reason string) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, reason)
}

func (s *adminServer) ListCameras(ctx context.Context, _ *cefiotv1.ListCamerasRequest) (*cefiotv1.ListCamerasResponse, error) {
	resp := &cefiotv1.ListCamerasResponse{}
	scope := admin.CallerScope(ctx)
	for _, id := range s.registry.IDs() {
		if !scope.Allows(id) {
			continue
		}
		if c, err := s.camera(id); err == nil {
			resp.Cameras = append(resp.Cameras, c)
		}
	}
	return resp, nil
}

func (s *adminServer) GetCamera(ctx context.Context, req *cefiotv1.GetCameraRequest) (*cefiotv1.GetCameraResponse, error) {
	if req.GetCameraId() == "" {
		return nil, invalid("camera_id", "must not be empty")
	}
	if !admin.CallerScope(ctx).Allows(req.GetCameraId()) {
		return nil, status.Errorf(codes.NotFound, "camera %q is not here", req.GetCameraId())
	}
	c, err := s.camera(req.GetCameraId())
	if err != nil {
		return nil, err
	}
	return &cefiotv1.GetCameraResponse{Camera: c}, nil
}

func (s *adminServer) UpdateCamera(ctx context.Context, req *cefiotv1.UpdateCameraRequest) (*cefiotv1.UpdateCameraResponse, error) {
	id := req.GetCameraId()
	if !cameraRE.MatchString(id) {
		return nil, invalid("camera_id", "must match "+cameraRE.String())
	}
	if !admin.CallerScope(ctx).Allows(id) {
		return nil, status.Errorf(codes.NotFound, "camera %q is not here", id)
	}
	o, err := overridesFromProto(req.GetSettings())
	if err != nil {
		return nil, err
	}
	if _, err := s.registry.Update(id, o); err != nil {
		// Validation errors start with the setting's field name.
		if field, reason, ok := strings.Cut(err.Error(), ": "); ok && !strings.Contains(field, " ") {
			return nil, invalid("settings."+field, reason)
		}
		return nil, status.Errorf(codes.Internal, "update camera %s: %v", id, err)
	}
	c, err := s.camera(id)
	if err != nil {
		return nil, err
	}
	return &cefiotv1.UpdateCameraResponse{Camera: c}, nil
}

func (s *adminServer) camera(id string) (*cefiotv1.Camera, error) {
	set, run, err := s.registry.Camera(id)
	if errors.Is(err, errUnknownCamera) {
		return nil, status.Errorf(codes.NotFound, "camera %q is neither in the settings file nor running here", id)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "camera %q: %v", id, err)
	}
	c := &cefiotv1.Camera{CameraId: id, Settings: settingsToProto(set), State: &cefiotv1.CameraState{}}
	if run != nil {
		st := run.State()
		c.State = &cefiotv1.CameraState{
			Running: st.Running, Online: st.Online, SourceDescription: st.Source, Decoder: st.Decoder,
			Frames: st.Frames, MotionFrames: st.MotionFrames, Events: st.Events, Reconnects: st.Reconnects,
			GlobalChanges: st.GlobalChanges, LastError: st.LastError, MeasuredFps: st.MeasuredFPS,
			SpoolFrames: st.SpoolFrames, SpoolBytes: st.SpoolBytes, SpoolDroppedFrames: st.SpoolDropped, LastSpoolGap: st.LastSpoolGap,
		}
		if !st.LastFrame.IsZero() {
			c.State.LastFrameTime = timestamppb.New(st.LastFrame)
		}
		if !st.StatusChanged.IsZero() {
			c.State.StatusChangedTime = timestamppb.New(st.StatusChanged)
		}
	}
	return c, nil
}

func settingsToProto(s Settings) *cefiotv1.CameraSettings {
	src, detect := redact.URL(s.Source), redact.URL(s.DetectSource)
	p := &cefiotv1.CameraSettings{
		Source: &src, DetectSource: &detect, Fps: &s.FPS, Realtime: &s.Realtime, Watch: &s.Watch,
		DetectWidth: ptr(int32(s.DetectWidth)), Threshold: ptr(int32(s.Threshold)), MinArea: &s.MinArea,
		Blur: ptr(int32(s.Blur)), PreCapture: ptr(int32(s.PreCapture)), PostCapture: ptr(int32(s.PostCapture)),
		MinMotionFrames: ptr(int32(s.MinMotionFrames)), Cooldown: durationpb.New(s.Cooldown), GlobalChange: &s.GlobalChange,
		Mask: &cefiotv1.MaskZones{},
	}
	for _, poly := range s.Mask {
		pp := &cefiotv1.Polygon{}
		for _, pt := range poly {
			pp.Points = append(pp.Points, &cefiotv1.Point{X: int32(pt.X), Y: int32(pt.Y)})
		}
		p.Mask.Zones = append(p.Mask.Zones, pp)
	}
	return p
}

func ptr[T any](v T) *T { return &v }

func overridesFromProto(p *cefiotv1.CameraSettings) (Overrides, error) {
	var o Overrides
	if p == nil {
		return o, invalid("settings", "must be set")
	}
	if p.Source != nil {
		if p.GetSource() == "" {
			return o, invalid("settings.source", "must not be empty")
		}
		o.Source = p.Source
	}
	o.DetectSource = p.DetectSource // "" goes back to one stream
	o.FPS, o.Realtime, o.Watch, o.MinArea, o.GlobalChange = p.Fps, p.Realtime, p.Watch, p.MinArea, p.GlobalChange
	conv := func(v *int32) *int {
		if v == nil {
			return nil
		}
		return ptr(int(*v))
	}
	o.DetectWidth, o.Threshold, o.Blur = conv(p.DetectWidth), conv(p.Threshold), conv(p.Blur)
	o.PreCapture, o.PostCapture, o.MinMotionFrames = conv(p.PreCapture), conv(p.PostCapture), conv(p.MinMotionFrames)
	if p.Cooldown != nil {
		if err := p.Cooldown.CheckValid(); err != nil {
			return o, invalid("settings.cooldown", err.Error())
		}
		o.Cooldown = ptr(p.Cooldown.AsDuration())
	}
	if p.Mask != nil {
		zones := [][][2]int{}
		for i, poly := range p.Mask.GetZones() {
			if len(poly.GetPoints()) < 3 {
				return o, invalid("settings.mask.zones["+strconv.Itoa(i)+"]", "a polygon needs at least 3 points")
			}
			var pts [][2]int
			for _, pt := range poly.GetPoints() {
				pts = append(pts, [2]int{int(pt.GetX()), int(pt.GetY())})
			}
			zones = append(zones, pts)
		}
		o.Mask = &zones
	}
	return o, nil
}
