package capture

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"gocv.io/x/gocv"
)

// EventID formats the id of the motion event whose first frame has
// sequence start in the session of the given epoch.
func EventID(camera string, epoch, start uint64) string {
	return fmt.Sprintf("%s_%d_e%08d", camera, epoch, start)
}

// FrameID formats the unique, stable id of a frame of a file or folder
// source: "<camera>_<epoch>_<sequence>", where the epoch comes from the
// media's content, so reading it again gives the same ids.
func FrameID(camera string, epoch, sequence uint64) string {
	return fmt.Sprintf("%s_%d_%08d", camera, epoch, sequence)
}

// CameraTimeFrameID formats the id of a frame of a live stream whose
// camera tells its clock (RTCP sender reports): "<camera>_at_<unix ms>",
// the picture's time by the camera's clock, to the millisecond. Every
// capture of the camera gives a picture the same time, whenever it
// connected and whatever decodes it, so two captures that overlap (a
// healed partition, an etcd quorum loss) make the same ids and the sink
// stores each frame once.
func CameraTimeFrameID(camera string, at time.Time) string {
	ms := (at.UnixMicro() + 500) / 1000 // the nearest millisecond
	return fmt.Sprintf("%s_at_%d", camera, ms)
}

// LiveFrameID formats the id of a frame of a live stream that gives no
// camera time (or not yet: a camera's first sender report comes within
// seconds of connecting): "<camera>_live_<fingerprint>", from the decoded
// picture itself. Captures that decode the same stream bytes with the same
// decoder make the same ids.
func LiveFrameID(camera string, fingerprint uint64) string {
	return fmt.Sprintf("%s_live_%016x", camera, fingerprint)
}

// Fingerprint returns 64 bits of the SHA-256 of a decoded picture (its
// size, type and every pixel). A real sensor's noise makes two moments'
// pictures differ; a camera that repeats one picture exactly (a frozen
// stream) repeats one frame, which is stored once.
func Fingerprint(m gocv.Mat) (uint64, error) {
	if m.Empty() {
		return 0, fmt.Errorf("fingerprint: empty picture")
	}
	if !m.IsContinuous() {
		m = m.Clone()
		defer m.Close()
	}
	pixels, err := m.DataPtrUint8()
	if err != nil {
		return 0, fmt.Errorf("fingerprint: %w", err)
	}
	h := sha256.New()
	var head [24]byte
	binary.BigEndian.PutUint64(head[0:], uint64(m.Rows()))
	binary.BigEndian.PutUint64(head[8:], uint64(m.Cols()))
	binary.BigEndian.PutUint64(head[16:], uint64(m.Type()))
	h.Write(head[:])
	h.Write(pixels)
	return binary.BigEndian.Uint64(h.Sum(nil)), nil
}
