package notify

import "sync"

// partition names one input partition.
type partition struct {
	topic string
	index int32
}

// record is one input record with events still out.
type record struct {
	offset    int64
	remaining int
}

// progress finds the input offsets that are safe to commit: a record's
// offset is committed once every event it gave is delivered or
// dead-lettered, and every record before it too. A restart therefore reads
// again what was not finished, and nothing is skipped.
type progress struct {
	mu    sync.Mutex
	parts map[partition]*partProgress
}

type partProgress struct {
	pending []*record // in offset order
	next    int64     // offset to commit (-1: nothing yet)
	dirty   bool      // next moved since the last commit
}

func newProgress() *progress { return &progress{parts: map[partition]*partProgress{}} }

// add records that the record at offset gave n events (for all targets),
// and returns the function each of them calls, once, when done.
func (p *progress) add(pt partition, offset int64, n int) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	pp := p.parts[pt]
	if pp == nil {
		pp = &partProgress{next: -1}
		p.parts[pt] = pp
	}
	r := &record{offset: offset, remaining: n}
	pp.pending = append(pp.pending, r)
	pp.advance()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		r.remaining--
		pp.advance()
	}
}

// advance pops the finished records at the head.
func (pp *partProgress) advance() {
	for len(pp.pending) > 0 && pp.pending[0].remaining <= 0 {
		pp.next = pp.pending[0].offset + 1
		pp.dirty = true
		pp.pending = pp.pending[1:]
	}
}

// take returns the offsets to commit that moved since the last take.
func (p *progress) take() map[partition]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[partition]int64{}
	for pt, pp := range p.parts {
		if pp.dirty {
			out[pt] = pp.next
			pp.dirty = false
		}
	}
	return out
}

// undo marks offsets as not committed after all (the commit failed).
func (p *progress) undo(offsets map[partition]int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pt := range offsets {
		if pp := p.parts[pt]; pp != nil {
			pp.dirty = true
		}
	}
}

// outstanding is how many records still wait for their events.
func (p *progress) outstanding() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pp := range p.parts {
		n += len(pp.pending)
	}
	return n
}
