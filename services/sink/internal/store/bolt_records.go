package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketFrames     = []byte("frames")
	bucketByTime     = []byte("by_time")
	bucketByTimeAll  = []byte("by_time_all")
	bucketByEvent    = []byte("by_event")
	bucketEvents     = []byte("events")
	bucketEvByTime   = []byte("ev_by_time")
	bucketEvByTimeAl = []byte("ev_by_time_all")
	bucketCameras    = []byte("cameras")
	bucketDeleted    = []byte("deleted")
	bucketMeta       = []byte("meta")

	keySchema  = []byte("schema")
	keyFrames  = []byte("frames")
	keyBytes   = []byte("bytes")
	keyEvents  = []byte("events")
	keyExpired = []byte("expired")
)

// record is the JSON form of a frame in the frames bucket. Its field names
// are part of the on-disk format.
type record struct {
	V               int       `json:"v"`
	Path            string    `json:"path"` // object key of the JPEG
	ThumbPath       string    `json:"thumb_path,omitempty"`
	ThumbSize       int64     `json:"thumb_size,omitempty"`
	FrameID         string    `json:"frame_id"`
	Site            string    `json:"site"`
	CameraID        string    `json:"camera_id"`
	SessionEpoch    uint64    `json:"session_epoch"`
	Sequence        uint64    `json:"sequence"`
	CaptureTime     time.Time `json:"capture_time"`
	StoredTime      time.Time `json:"stored_time"`
	MotionScore     float64   `json:"motion_score"`
	Boxes           []Box     `json:"boxes,omitempty"`
	Labels          []Label   `json:"labels,omitempty"`
	Width           int32     `json:"width"`
	Height          int32     `json:"height"`
	ContentSHA256   string    `json:"sha256"`
	SizeBytes       int64     `json:"size"`
	CaptureNode     string    `json:"capture_node,omitempty"`
	EnrichNode      string    `json:"enrich_node,omitempty"`
	SourceTopic     string    `json:"source_topic,omitempty"`
	SourcePartition int32     `json:"source_partition"`
	SourceOffset    int64     `json:"source_offset"`
	EventID         string    `json:"event_id,omitempty"`
	EventPhase      int32     `json:"event_phase,omitempty"`
	EventFrameIndex uint32    `json:"event_frame_index,omitempty"`
	Motion          bool      `json:"motion,omitempty"`
}

func recordFromMeta(m FrameMeta, relPath string) record {
	return record{
		V: schemaV1, Path: relPath,
		FrameID: m.FrameID, Site: m.Site, CameraID: m.CameraID,
		SessionEpoch: m.SessionEpoch, Sequence: m.Sequence,
		CaptureTime: m.CaptureTime, StoredTime: m.StoredTime,
		MotionScore: m.MotionScore, Boxes: m.Boxes, Labels: m.Labels, Width: m.Width, Height: m.Height,
		ContentSHA256: m.ContentSHA256, SizeBytes: m.SizeBytes,
		CaptureNode: m.CaptureNode, EnrichNode: m.EnrichNode,
		SourceTopic: m.SourceTopic, SourcePartition: m.SourcePartition, SourceOffset: m.SourceOffset,
		EventID: m.EventID, EventPhase: m.EventPhase, EventFrameIndex: m.EventFrameIndex, Motion: m.Motion,
	}
}

func recordFromEntry(e Entry) record {
	r := recordFromMeta(e.Meta, e.Path)
	r.ThumbPath, r.ThumbSize = e.ThumbPath, e.Meta.ThumbnailBytes
	return r
}

func (r record) entry() Entry { return Entry{Meta: r.meta(), Path: r.Path, ThumbPath: r.ThumbPath} }

func (r record) meta() FrameMeta {
	var boxes []Box
	if len(r.Boxes) > 0 {
		boxes = append([]Box(nil), r.Boxes...)
	}
	var labels []Label
	if len(r.Labels) > 0 {
		labels = append([]Label(nil), r.Labels...)
	}
	return FrameMeta{
		Labels:  labels,
		FrameID: r.FrameID, Site: r.Site, CameraID: r.CameraID,
		SessionEpoch: r.SessionEpoch, Sequence: r.Sequence,
		CaptureTime: r.CaptureTime.UTC(), StoredTime: r.StoredTime.UTC(),
		MotionScore: r.MotionScore, Boxes: boxes, Width: r.Width, Height: r.Height,
		ContentSHA256: r.ContentSHA256, SizeBytes: r.SizeBytes,
		CaptureNode: r.CaptureNode, EnrichNode: r.EnrichNode,
		SourceTopic: r.SourceTopic, SourcePartition: r.SourcePartition, SourceOffset: r.SourceOffset,
		EventID: r.EventID, EventPhase: r.EventPhase, EventFrameIndex: r.EventFrameIndex, Motion: r.Motion,
		ThumbnailBytes: r.ThumbSize,
	}
}

func decodeRecord(id string, v []byte) (record, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, fmt.Errorf("%w: decode index record of frame %q: %v", ErrCorrupt, id, err)
	}
	if r.V != schemaV1 {
		return record{}, fmt.Errorf("%w: index record of frame %q has unknown version %d", ErrCorrupt, id, r.V)
	}
	return r, nil
}

// lookup reads the index record of id.
func (b *boltIndex) lookup(id string) (rec record, found bool, err error) {
	err = b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFrames).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		rec, err = decodeRecord(id, v)
		return err
	})
	return rec, found, dbErr(err)
}

func (b *boltIndex) wasDeleted(id string) (bool, error) {
	var deleted bool
	err := b.db.View(func(tx *bolt.Tx) error {
		deleted = tx.Bucket(bucketDeleted).Get([]byte(id)) != nil
		return nil
	})
	return deleted, dbErr(err)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b *bolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// addU64 adds delta (which may be negative) to a counter, never below 0.
func addU64(b *bolt.Bucket, key []byte, delta int64) error {
	v := int64(getU64(b, key)) + delta
	return b.Put(key, u64(uint64(max(v, 0))))
}
