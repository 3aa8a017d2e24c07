package sink

import (
	"errors"
	"log/slog"
	"strings"
	"syscall"
)

// A full disk stops consumption like any store error (the workload
// restarts from the last commit, so nothing is lost) but is said once, in
// the log, the cefiot_sink_disk_full gauge, the status and the sink's
// health, until a batch with new frames is stored whole.
//
// A single frame that fits does not clear it. Stores run concurrently, and
// near the limit one write finds the disk full while another still fits
// a smaller frame, or one in the room the failed write gave back; the
// sink is still stuck on the first. Only a whole batch stored moves the
// sink's offsets on. A batch of duplicates (the frames stored since the
// last commit, read again after the restart) writes nothing and shows
// nothing either.

// reportDiskFull records that a write found the store's disk full.
func (s *sink) reportDiskFull(logger *slog.Logger, err error) {
	s.setDiskFull(true, logger, err)
}

// reportRoom records that a batch with new frames was stored whole.
func (s *sink) reportRoom(logger *slog.Logger) {
	s.setDiskFull(false, logger, nil)
}

func (s *sink) setDiskFull(full bool, logger *slog.Logger, err error) {
	s.fullMu.Lock()
	defer s.fullMu.Unlock()
	if s.full == full {
		return
	}
	s.full = full
	if full {
		logger.Error("DISK FULL: the store's disk is full; consumption stops, nothing is committed, and starts again once a batch of frames fits", "err", err)
		s.metrics.diskFull.Set(1)
	} else {
		logger.Info("the store's disk has room again; consuming")
		s.metrics.diskFull.Set(0)
	}
	if s.serving != nil {
		s.serving(!full)
	}
}

// isDiskFull reports whether err is the store's disk being full: ENOSPC,
// also where a library kept only its text (bbolt's file resize errors).
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), syscall.ENOSPC.Error())
}
