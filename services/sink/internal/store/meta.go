package store

import "slices"

import "time"

// Box is a motion bounding box in pixels.
type Box struct {
	X, Y, Width, Height int32
}

// Label is an object a detector found in a frame.
type Label struct {
	Name  string  `json:"name"`
	Score float64 `json:"score"`
	Box   Box     `json:"box"`
}

// labelNames adds the names of labels to names, sorted and once each.
func labelNames(names []string, labels []Label) []string {
	for _, l := range labels {
		if !slices.Contains(names, l.Name) {
			names = append(names, l.Name)
		}
	}
	slices.Sort(names)
	return names
}

func (b Box) empty() bool { return b.Width <= 0 || b.Height <= 0 }

func (b Box) union(o Box) Box {
	if b.empty() {
		return o
	}
	if o.empty() {
		return b
	}
	x0, y0 := min(b.X, o.X), min(b.Y, o.Y)
	x1, y1 := max(b.X+b.Width, o.X+o.Width), max(b.Y+b.Height, o.Y+o.Height)
	return Box{X: x0, Y: y0, Width: x1 - x0, Height: y1 - y0}
}

// Event phases of a frame (cefiot.v1.EventPhase values).
const (
	PhaseStart  = 1
	PhaseUpdate = 2
	PhaseEnd    = 3
)

// FrameMeta is the metadata of one stored frame.
type FrameMeta struct {
	FrameID      string
	Site         string
	CameraID     string
	SessionEpoch uint64
	Sequence     uint64
	CaptureTime  time.Time
	StoredTime   time.Time
	MotionScore  float64
	Boxes        []Box
	// Labels are the objects a detector found in the frame.
	Labels          []Label
	Width, Height   int32
	ContentSHA256   string // lowercase hex of the JPEG's SHA-256
	SizeBytes       int64
	CaptureNode     string
	EnrichNode      string
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	// EventID is the motion event of the frame ("" for none).
	EventID         string
	EventPhase      int32
	EventFrameIndex uint32
	// Motion is false for pre- and post-capture frames.
	Motion bool
	// ThumbnailBytes is the size of the stored thumbnail (0: none).
	ThumbnailBytes int64
}

// Event is a motion event, aggregated from its stored frames.
type Event struct {
	EventID     string
	Site        string
	CameraID    string
	Start, End  time.Time // capture times of its first and last stored frame
	Ended       bool      // its END frame is stored
	Frames      int64
	SizeBytes   int64
	PeakScore   float64
	BestFrameID string
	Boxes       []Box // of the best frame
	Region      Box   // union of all its boxes
	// Labels are the kinds of object found in its frames, sorted.
	Labels []string
}
