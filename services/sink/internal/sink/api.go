package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cefiot/cefiot/libs/service"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
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
}

func (a *api) GetStatus(context.Context, *cefiotv1.GetStatusRequest) (*cefiotv1.GetStatusResponse, error) {
	v := service.CounterValue
	return &cefiotv1.GetStatusResponse{Status: a.proc.Status(map[string]int64{
		"records_in":   v(a.metrics.in),
		"stored":       v(a.metrics.stored),
		"duplicates":   v(a.metrics.duplicates),
		"bad_records":  v(a.metrics.bad),
		"bytes_stored": v(a.metrics.bytes),
	})}, nil
}

func invalid(field, reason string) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, reason)
}

func (a *api) ListFrames(ctx context.Context, req *cefiotv1.ListFramesRequest) (*cefiotv1.ListFramesResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > maxPageSize:
		return nil, invalid("page_size", fmt.Sprintf("must be 0..%d, got %d", maxPageSize, size))
	case size == 0:
		size = defaultPageSize
	}
	q := store.Query{CameraID: req.GetCameraId(), Limit: size, PageToken: req.GetPageToken()}
	if req.StartTime != nil {
		if err := req.StartTime.CheckValid(); err != nil {
			return nil, invalid("start_time", err.Error())
		}
		q.Start = req.StartTime.AsTime()
	}
	if req.EndTime != nil {
		if err := req.EndTime.CheckValid(); err != nil {
			return nil, invalid("end_time", err.Error())
		}
		q.End = req.EndTime.AsTime()
	}
	if !q.Start.IsZero() && !q.End.IsZero() && !q.End.After(q.Start) {
		return nil, invalid("end_time", "must be after start_time")
	}
	frames, next, err := a.store.List(ctx, q)
	if errors.Is(err, store.ErrInvalidPageToken) {
		return nil, invalid("page_token", "malformed; pass a next_page_token from a previous response")
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list frames: %v", err)
	}
	resp := &cefiotv1.ListFramesResponse{NextPageToken: next}
	for _, f := range frames {
		resp.Frames = append(resp.Frames, metaToProto(f))
	}
	return resp, nil
}

func (a *api) GetFrame(ctx context.Context, req *cefiotv1.GetFrameRequest) (*cefiotv1.GetFrameResponse, error) {
	if req.GetFrameId() == "" {
		return nil, invalid("frame_id", "must not be empty")
	}
	meta, jpeg, err := a.store.Get(ctx, req.GetFrameId())
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
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("frame_id")
		_, jpeg, err := a.store.Get(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			http.Error(w, fmt.Sprintf("frame %q is not stored", id), http.StatusNotFound)
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
	}
	if msg.TopicPartition.Topic != nil {
		m.SourceTopic = *msg.TopicPartition.Topic
	}
	for _, b := range f.GetBoxes() {
		m.Boxes = append(m.Boxes, store.Box{X: b.GetX(), Y: b.GetY(), Width: b.GetWidth(), Height: b.GetHeight()})
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
	}
	for _, b := range m.Boxes {
		out.Boxes = append(out.Boxes, &cefiotv1.Box{X: b.X, Y: b.Y, Width: b.Width, Height: b.Height})
	}
	return out
}
