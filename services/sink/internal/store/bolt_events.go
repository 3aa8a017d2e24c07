package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// cameraRecord is the JSON value of the cameras bucket.
type cameraRecord struct {
	Frames int64 `json:"frames"`
	Bytes  int64 `json:"bytes"`
	Events int64 `json:"events"`
}

func updateCamera(tx *bolt.Tx, camera string, f func(*cameraRecord)) error {
	b := tx.Bucket(bucketCameras)
	var c cameraRecord
	if v := b.Get([]byte(camera)); v != nil {
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("%w: camera counters of %q: %v", ErrCorrupt, camera, err)
		}
	}
	f(&c)
	if c.Frames <= 0 && c.Events <= 0 {
		return b.Delete([]byte(camera))
	}
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return b.Put([]byte(camera), v)
}

// rebuildCameraCounters creates the cameras bucket from the frames bucket
// (an index written before the bucket existed).
func rebuildCameraCounters(tx *bolt.Tx) error {
	if _, err := tx.CreateBucket(bucketCameras); err != nil {
		return err
	}
	counts := map[string]*cameraRecord{}
	err := tx.Bucket(bucketFrames).ForEach(func(k, v []byte) error {
		rec, err := decodeRecord(string(k), v)
		if err != nil {
			return err
		}
		c := counts[rec.CameraID]
		if c == nil {
			c = &cameraRecord{}
			counts[rec.CameraID] = c
		}
		c.Frames++
		c.Bytes += rec.SizeBytes
		return nil
	})
	if err != nil {
		return err
	}
	for cam, c := range counts {
		if err := updateCamera(tx, cam, func(r *cameraRecord) { *r = *c }); err != nil {
			return err
		}
	}
	return nil
}

// eventRecord is the JSON value of the events bucket.
type eventRecord struct {
	EventID     string    `json:"event_id"`
	Site        string    `json:"site"`
	CameraID    string    `json:"camera_id"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Ended       bool      `json:"ended,omitempty"`
	Frames      int64     `json:"frames"`
	SizeBytes   int64     `json:"size"`
	PeakScore   float64   `json:"peak_score"`
	BestFrameID string    `json:"best_frame_id"`
	Boxes       []Box     `json:"boxes,omitempty"`
	Region      Box       `json:"region"`
	Labels      []string  `json:"labels,omitempty"`
}

func (e eventRecord) event() Event {
	ev := Event{
		EventID: e.EventID, Site: e.Site, CameraID: e.CameraID, Start: e.Start.UTC(), End: e.End.UTC(),
		Ended: e.Ended, Frames: e.Frames, SizeBytes: e.SizeBytes, PeakScore: e.PeakScore,
		BestFrameID: e.BestFrameID, Region: e.Region,
	}
	if len(e.Labels) > 0 {
		ev.Labels = append([]string(nil), e.Labels...)
	}
	if len(e.Boxes) > 0 {
		ev.Boxes = append([]Box(nil), e.Boxes...)
	}
	return ev
}

func loadEvent(tx *bolt.Tx, id string) (eventRecord, bool, error) {
	v := tx.Bucket(bucketEvents).Get([]byte(id))
	if v == nil {
		return eventRecord{}, false, nil
	}
	var e eventRecord
	if err := json.Unmarshal(v, &e); err != nil {
		return eventRecord{}, false, fmt.Errorf("%w: event %q: %v", ErrCorrupt, id, err)
	}
	return e, true, nil
}

func saveEvent(tx *bolt.Tx, e eventRecord) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketEvents).Put([]byte(e.EventID), v)
}

func putEventTimeKeys(tx *bolt.Tx, e eventRecord) error {
	if err := tx.Bucket(bucketEvByTime).Put(timeKey(cameraPrefix(e.CameraID), e.Start, e.EventID), nil); err != nil {
		return err
	}
	return tx.Bucket(bucketEvByTimeAl).Put(timeKey(nil, e.Start, e.EventID), nil)
}

func deleteEventTimeKeys(tx *bolt.Tx, e eventRecord) error {
	if err := tx.Bucket(bucketEvByTime).Delete(timeKey(cameraPrefix(e.CameraID), e.Start, e.EventID)); err != nil {
		return err
	}
	return tx.Bucket(bucketEvByTimeAl).Delete(timeKey(nil, e.Start, e.EventID))
}

// addToEvent folds a newly indexed frame into its event and reports
// whether the event is new.
func addToEvent(tx *bolt.Tx, rec record) (bool, error) {
	e, found, err := loadEvent(tx, rec.EventID)
	if err != nil {
		return false, err
	}
	if !found {
		e = eventRecord{EventID: rec.EventID, Site: rec.Site, CameraID: rec.CameraID, Start: rec.CaptureTime, End: rec.CaptureTime}
	}
	oldStart := e.Start
	e.Frames++
	e.SizeBytes += rec.SizeBytes
	if rec.CaptureTime.Before(e.Start) {
		e.Start = rec.CaptureTime
	}
	if rec.CaptureTime.After(e.End) {
		e.End = rec.CaptureTime
	}
	if e.BestFrameID == "" || rec.MotionScore > e.PeakScore {
		e.PeakScore, e.BestFrameID = rec.MotionScore, rec.FrameID
		e.Boxes = append([]Box(nil), rec.Boxes...)
	}
	for _, b := range rec.Boxes {
		e.Region = e.Region.union(b)
	}
	if len(rec.Labels) > 0 {
		e.Labels = labelNames(e.Labels, rec.Labels)
	}
	if rec.EventPhase == PhaseEnd {
		e.Ended = true
	}
	if found && !oldStart.Equal(e.Start) {
		old := e
		old.Start = oldStart
		if err := deleteEventTimeKeys(tx, old); err != nil {
			return false, err
		}
	}
	if !found || !oldStart.Equal(e.Start) {
		if err := putEventTimeKeys(tx, e); err != nil {
			return false, err
		}
	}
	if !found {
		if err := addU64(tx.Bucket(bucketMeta), keyEvents, 1); err != nil {
			return false, err
		}
	}
	return !found, saveEvent(tx, e)
}

// removeFromEvent takes a deleted frame out of its event; the event goes
// when its last frame goes. Start, peak and best frame are recomputed from
// the remaining frames when the deleted frame defined them.
func removeFromEvent(tx *bolt.Tx, rec record) error {
	e, found, err := loadEvent(tx, rec.EventID)
	if err != nil || !found {
		return err
	}
	e.Frames--
	e.SizeBytes -= rec.SizeBytes
	if err := deleteEventTimeKeys(tx, e); err != nil {
		return err
	}
	if e.Frames <= 0 {
		if err := tx.Bucket(bucketEvents).Delete([]byte(e.EventID)); err != nil {
			return err
		}
		if err := addU64(tx.Bucket(bucketMeta), keyEvents, -1); err != nil {
			return err
		}
		return updateCamera(tx, e.CameraID, func(c *cameraRecord) { c.Events-- })
	}
	// Recompute from the remaining frames (events are small).
	prefix := cameraPrefix(e.EventID)
	frames := tx.Bucket(bucketFrames)
	c := tx.Bucket(bucketByEvent).Cursor()
	first := true
	e.PeakScore, e.BestFrameID, e.Boxes, e.Labels = 0, "", nil, nil
	for k, _ := c.Seek(prefix); k != nil && len(k) > len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
		t, id, ok := splitTimeKey(k[len(prefix):])
		if !ok {
			return fmt.Errorf("%w: malformed by_event key %x", ErrCorrupt, k)
		}
		if first {
			e.Start, first = t, false
		}
		v := frames.Get([]byte(id))
		if v == nil {
			continue
		}
		fr, err := decodeRecord(id, v)
		if err != nil {
			return err
		}
		if e.BestFrameID == "" || fr.MotionScore > e.PeakScore {
			e.PeakScore, e.BestFrameID = fr.MotionScore, fr.FrameID
			e.Boxes = append([]Box(nil), fr.Boxes...)
		}
		if len(fr.Labels) > 0 {
			e.Labels = labelNames(e.Labels, fr.Labels)
		}
	}
	if err := putEventTimeKeys(tx, e); err != nil {
		return err
	}
	return saveEvent(tx, e)
}

// GetEvent reads one event's aggregate.
func (b *boltIndex) GetEvent(ctx context.Context, id string) (Event, bool, error) {
	if err := b.check(ctx); err != nil {
		return Event{}, false, err
	}
	var e eventRecord
	var found bool
	err := b.db.View(func(tx *bolt.Tx) error {
		var err error
		e, found, err = loadEvent(tx, id)
		return err
	})
	if err != nil || !found {
		return Event{}, false, dbErr(err)
	}
	return e.event(), true, nil
}

// ListEvents scans ev_by_time (one camera) or ev_by_time_all.
func (b *boltIndex) ListEvents(ctx context.Context, q EventQuery) ([]Event, string, error) {
	if err := b.check(ctx); err != nil {
		return nil, "", err
	}
	sc := scan{bucket: bucketEvByTimeAl, kind: tokenEventsAll, start: q.Start, end: q.End, limit: q.Limit, token: q.PageToken, reverse: q.NewestFirst}
	if q.CameraID != "" {
		sc.prefix, sc.bucket, sc.kind = cameraPrefix(q.CameraID), bucketEvByTime, tokenEventsCamera
	}
	if q.NewestFirst {
		sc.kind = tokenEventsAllDesc
		if q.CameraID != "" {
			sc.kind = tokenEventsCameraDesc
		}
	}
	var out []Event
	next, err := b.scan(ctx, sc, func(tx *bolt.Tx, id string) (bool, error) {
		e, found, err := loadEvent(tx, id)
		if err != nil {
			return false, err
		}
		if !found {
			return false, fmt.Errorf("%w: time key of event %q has no events entry", ErrCorrupt, id)
		}
		if e.PeakScore < q.MinScore || (q.Label != "" && !slices.Contains(e.Labels, q.Label)) {
			return false, nil
		}
		out = append(out, e.event())
		return true, nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}
