package sink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/admin"
	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
	"github.com/cefiot/cefiot/services/sink/internal/sites"
	"github.com/cefiot/cefiot/services/sink/internal/store"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

type api struct {
	cefiotv1.UnimplementedSinkServiceServer
	proc    *service.Process
	metrics *metrics
	store   *store.Store
	sites   *sites.Registry
}

// ListSites lists the edge sites the cloud has heard from.
func (a *api) ListSites(context.Context, *cefiotv1.ListSitesRequest) (*cefiotv1.ListSitesResponse, error) {
	return &cefiotv1.ListSitesResponse{Sites: a.sites.List()}, nil
}

func (a *api) GetStatus(context.Context, *cefiotv1.GetStatusRequest) (*cefiotv1.GetStatusResponse, error) {
	v := service.CounterValue
	return &cefiotv1.GetStatusResponse{Status: a.proc.Status(map[string]int64{
		"records_in":   v(a.metrics.in),
		"stored":       v(a.metrics.stored),
		"duplicates":   v(a.metrics.duplicates),
		"bad_records":  v(a.metrics.bad),
		"bytes_stored": v(a.metrics.bytes),
		"store_errors": v(a.metrics.storeErrors),
		"expired":      v(a.metrics.expired),
		"disk_full":    service.GaugeValue(a.metrics.diskFull),
	})}, nil
}

func invalid(field, reason string) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, reason)
}

// pageSize validates a page size (0 means the default).
func pageSize(n int32) (int, error) {
	switch {
	case n < 0 || n > maxPageSize:
		return 0, invalid("page_size", fmt.Sprintf("must be 0..%d, got %d", maxPageSize, n))
	case n == 0:
		return defaultPageSize, nil
	}
	return int(n), nil
}

// timeRange validates optional start and end times.
func timeRange(start, end *timestamppb.Timestamp) (time.Time, time.Time, error) {
	var s, e time.Time
	if start != nil {
		if err := start.CheckValid(); err != nil {
			return s, e, invalid("start_time", err.Error())
		}
		s = start.AsTime()
	}
	if end != nil {
		if err := end.CheckValid(); err != nil {
			return s, e, invalid("end_time", err.Error())
		}
		e = end.AsTime()
	}
	if !s.IsZero() && !e.IsZero() && !e.After(s) {
		return s, e, invalid("end_time", "must be after start_time")
	}
	return s, e, nil
}

func minScore(v float64) error {
	if math.IsNaN(v) || v < 0 || v > 1 {
		return invalid("min_score", fmt.Sprintf("must be 0..1, got %v", v))
	}
	return nil
}

// storeErr maps store errors of a list or get to gRPC statuses; field names
// the request field an ErrInvalidID is about.
func storeErr(what, field string, err error) error {
	switch {
	case errors.Is(err, store.ErrInvalidPageToken):
		return invalid("page_token", "malformed or from another query; pass a next_page_token from a previous response")
	case errors.Is(err, store.ErrInvalidID):
		return invalid(field, err.Error())
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: %v", what, err)
	default:
		return status.Errorf(codes.Internal, "%s: %v", what, err)
	}
}

func (a *api) ListFrames(ctx context.Context, req *cefiotv1.ListFramesRequest) (*cefiotv1.ListFramesResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if err := minScore(req.GetMinScore()); err != nil {
		return nil, err
	}
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime())
	if err != nil {
		return nil, err
	}
	if id := req.GetCameraId(); id != "" {
		if err := store.ValidateCameraID(id); err != nil {
			return nil, invalid("camera_id", err.Error())
		}
	}
	scope := admin.CallerScope(ctx)
	if req.GetCameraId() != "" && !scope.Allows(req.GetCameraId()) {
		return &cefiotv1.ListFramesResponse{}, nil // another camera's frames do not exist for this caller
	}
	q := store.Query{CameraID: req.GetCameraId(), EventID: req.GetEventId(), Start: start, End: end,
		MinScore: req.GetMinScore(), Limit: size, PageToken: req.GetPageToken()}
	if q.CameraID == "" && scope.Scoped && len(scope.Cameras) == 1 {
		q.CameraID = scope.Cameras[0]
	}
	field := "camera_id"
	if q.EventID != "" {
		field = "event_id"
	}
	frames, next, err := a.store.List(ctx, q)
	if err != nil {
		return nil, storeErr("list frames", field, err)
	}
	resp := &cefiotv1.ListFramesResponse{NextPageToken: next}
	for _, f := range frames {
		if scope.Allows(f.CameraID) {
			resp.Frames = append(resp.Frames, metaToProto(f))
		}
	}
	return resp, nil
}

func (a *api) ListEvents(ctx context.Context, req *cefiotv1.ListEventsRequest) (*cefiotv1.ListEventsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if err := minScore(req.GetMinScore()); err != nil {
		return nil, err
	}
	if err := labelName(req.GetLabel()); err != nil {
		return nil, err
	}
	start, end, err := timeRange(req.GetStartTime(), req.GetEndTime())
	if err != nil {
		return nil, err
	}
	scope := admin.CallerScope(ctx)
	if req.GetCameraId() != "" && !scope.Allows(req.GetCameraId()) {
		return &cefiotv1.ListEventsResponse{}, nil
	}
	cameraID := req.GetCameraId()
	if cameraID == "" && scope.Scoped && len(scope.Cameras) == 1 {
		cameraID = scope.Cameras[0]
	}
	events, next, err := a.store.ListEvents(ctx, store.EventQuery{CameraID: cameraID, Start: start, End: end,
		MinScore: req.GetMinScore(), Label: req.GetLabel(), Limit: size, PageToken: req.GetPageToken(), NewestFirst: req.GetNewestFirst()})
	if err != nil {
		return nil, storeErr("list events", "camera_id", err)
	}
	resp := &cefiotv1.ListEventsResponse{NextPageToken: next}
	for _, e := range events {
		if scope.Allows(e.CameraID) {
			resp.Events = append(resp.Events, eventToProto(e))
		}
	}
	return resp, nil
}

func (a *api) GetEvent(ctx context.Context, req *cefiotv1.GetEventRequest) (*cefiotv1.GetEventResponse, error) {
	if req.GetEventId() == "" {
		return nil, invalid("event_id", "must not be empty")
	}
	e, err := a.store.GetEvent(ctx, req.GetEventId())
	if err == nil && !admin.CallerScope(ctx).Allows(e.CameraID) {
		err = store.ErrNotFound // another camera's event does not exist for this caller
	}
	if err != nil {
		return nil, storeErr(fmt.Sprintf("event %q", req.GetEventId()), "event_id", err)
	}
	return &cefiotv1.GetEventResponse{Event: eventToProto(e)}, nil
}

func (a *api) GetStats(ctx context.Context, req *cefiotv1.GetStatsRequest) (*cefiotv1.GetStatsResponse, error) {
	scope := admin.CallerScope(ctx)
	if req.GetCameraId() != "" && !scope.Allows(req.GetCameraId()) {
		return &cefiotv1.GetStatsResponse{}, nil
	}
	st, err := a.store.StatsOf(ctx, req.GetCameraId())
	if err != nil {
		return nil, storeErr("stats", "camera_id", err)
	}
	resp := &cefiotv1.GetStatsResponse{
		Frames: int64(st.Frames), Bytes: int64(st.Bytes), Events: int64(st.Events),
		FramesExpired: int64(st.Expired), Backend: st.Backend,
	}
	if scope.Scoped { // the totals of the caller's cameras only
		resp.Frames, resp.Bytes, resp.Events, resp.FramesExpired = 0, 0, 0, 0
		for _, c := range st.Cameras {
			if scope.Allows(c.CameraID) {
				resp.Frames += c.Frames
				resp.Bytes += c.Bytes
				resp.Events += c.Events
			}
		}
	}
	for _, c := range st.Cameras {
		if !scope.Allows(c.CameraID) {
			continue
		}
		cs := &cefiotv1.CameraStats{CameraId: c.CameraID, Frames: c.Frames, Bytes: c.Bytes, Events: c.Events}
		if !c.Oldest.IsZero() {
			cs.OldestTime, cs.NewestTime = timestamppb.New(c.Oldest), timestamppb.New(c.Newest)
		}
		resp.Cameras = append(resp.Cameras, cs)
	}
	return resp, nil
}

func eventToProto(e store.Event) *cefiotv1.StoredEvent {
	out := &cefiotv1.StoredEvent{
		EventId: e.EventID, Site: e.Site, CameraId: e.CameraID,
		StartTime: timestamppb.New(e.Start), EndTime: timestamppb.New(e.End), Ended: e.Ended,
		FrameCount: e.Frames, PeakScore: e.PeakScore, BestFrameId: e.BestFrameID, SizeBytes: e.SizeBytes,
		Region: &cefiotv1.Box{X: e.Region.X, Y: e.Region.Y, Width: e.Region.Width, Height: e.Region.Height},
	}
	for _, b := range e.Boxes {
		out.Boxes = append(out.Boxes, &cefiotv1.Box{X: b.X, Y: b.Y, Width: b.Width, Height: b.Height})
	}
	out.Labels = append(out.Labels, e.Labels...)
	return out
}

// labelName checks a label filter: empty (none), or a name of 1..64
// letters, digits, '_', '-', '.' or spaces.
func labelName(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 64 {
		return invalid("label", fmt.Sprintf("must be at most 64 bytes, got %d", len(v)))
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == ' ') {
			return invalid("label", fmt.Sprintf("%q: only letters, digits, '_', '-', '.' and spaces", v))
		}
	}
	return nil
}

func (a *api) GetFrame(ctx context.Context, req *cefiotv1.GetFrameRequest) (*cefiotv1.GetFrameResponse, error) {
	if req.GetFrameId() == "" {
		return nil, invalid("frame_id", "must not be empty")
	}
	meta, jpeg, err := a.store.Get(ctx, req.GetFrameId())
	if err == nil && !admin.CallerScope(ctx).Allows(meta.CameraID) {
		err = store.ErrNotFound // another camera's frame does not exist for this caller
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, status.Errorf(codes.NotFound, "frame %q is not stored", req.GetFrameId())
	case errors.Is(err, store.ErrInvalidID):
		return nil, invalid("frame_id", err.Error())
	case err != nil:
		return nil, status.Errorf(codes.Internal, "get frame %q: %v", req.GetFrameId(), err)
	}
	return &cefiotv1.GetFrameResponse{Frame: metaToProto(meta), Jpeg: jpeg}, nil
}

// jpegHandler serves a stored frame as image/jpeg, for browsers.
func (a *api) jpegHandler() http.Handler {
	return imageHandler(func(ctx context.Context, id string) ([]byte, error) {
		meta, jpeg, err := a.store.Get(ctx, id)
		if err == nil && !admin.CallerScope(ctx).Allows(meta.CameraID) {
			return nil, store.ErrNotFound
		}
		return jpeg, err
	})
}

// thumbnailHandler serves a stored frame's thumbnail as image/jpeg.
func (a *api) thumbnailHandler() http.Handler {
	return imageHandler(func(ctx context.Context, id string) ([]byte, error) {
		if scope := admin.CallerScope(ctx); scope.Scoped {
			meta, _, err := a.store.Get(ctx, id)
			if err != nil {
				return nil, err
			}
			if !scope.Allows(meta.CameraID) {
				return nil, store.ErrNotFound
			}
		}
		return a.store.GetThumbnail(ctx, id)
	})
}

func imageHandler(get func(ctx context.Context, id string) ([]byte, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("frame_id")
		jpeg, err := get(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case errors.Is(err, store.ErrInvalidID):
			http.Error(w, "frame_id: "+err.Error(), http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, "get frame: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", strconv.Itoa(len(jpeg)))
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		_, _ = w.Write(jpeg)
	})
}

func metaFromProto(ef *cefiotv1.EnrichedFrame, msg *kafka.Message) store.FrameMeta {
	f := ef.GetFrame()
	m := store.FrameMeta{
		FrameID: f.GetFrameId(), Site: ef.GetSite(), CameraID: f.GetCameraId(),
		SessionEpoch: f.GetSessionEpoch(), Sequence: f.GetSequence(),
		CaptureTime: f.GetCaptureTime().AsTime(), MotionScore: f.GetMotionScore(),
		Width: f.GetWidth(), Height: f.GetHeight(), ContentSHA256: ef.GetContentSha256(),
		SizeBytes: int64(len(f.GetJpeg())), CaptureNode: f.GetCaptureNode(), EnrichNode: ef.GetEnrichNode(),
		SourcePartition: msg.TopicPartition.Partition, SourceOffset: int64(msg.TopicPartition.Offset),
		EventID: f.GetEventId(), EventPhase: int32(f.GetEventPhase()), EventFrameIndex: f.GetEventFrameIndex(), Motion: f.GetMotion(),
	}
	if msg.TopicPartition.Topic != nil {
		m.SourceTopic = *msg.TopicPartition.Topic
	}
	for _, b := range f.GetBoxes() {
		m.Boxes = append(m.Boxes, store.Box{X: b.GetX(), Y: b.GetY(), Width: b.GetWidth(), Height: b.GetHeight()})
	}
	for _, l := range ef.GetLabels() {
		b := l.GetBox()
		m.Labels = append(m.Labels, store.Label{Name: l.GetName(), Score: l.GetScore(),
			Box: store.Box{X: b.GetX(), Y: b.GetY(), Width: b.GetWidth(), Height: b.GetHeight()}})
	}
	return m
}

func metaToProto(m store.FrameMeta) *cefiotv1.StoredFrame {
	out := &cefiotv1.StoredFrame{
		FrameId: m.FrameID, Site: m.Site, CameraId: m.CameraID, SessionEpoch: m.SessionEpoch, Sequence: m.Sequence,
		CaptureTime: timestamppb.New(m.CaptureTime), StoredTime: timestamppb.New(m.StoredTime),
		MotionScore: m.MotionScore, Width: m.Width, Height: m.Height, ContentSha256: m.ContentSHA256,
		SizeBytes: m.SizeBytes, CaptureNode: m.CaptureNode, EnrichNode: m.EnrichNode,
		SourceTopic: m.SourceTopic, SourcePartition: m.SourcePartition, SourceOffset: m.SourceOffset,
		EventId: m.EventID, EventPhase: cefiotv1.EventPhase(m.EventPhase), EventFrameIndex: m.EventFrameIndex,
		Motion: m.Motion, ThumbnailSizeBytes: m.ThumbnailBytes,
	}
	for _, b := range m.Boxes {
		out.Boxes = append(out.Boxes, &cefiotv1.Box{X: b.X, Y: b.Y, Width: b.Width, Height: b.Height})
	}
	for _, l := range m.Labels {
		out.Labels = append(out.Labels, &cefiotv1.ObjectLabel{Name: l.Name, Score: l.Score,
			Box: &cefiotv1.Box{X: l.Box.X, Y: l.Box.Y, Width: l.Box.Width, Height: l.Box.Height}})
	}
	return out
}
