package notify

import (
	"encoding/json"
	"sync"
)

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

// progress follows one target's work through the input: a record is done
// for the target once every event it gave the target is delivered or
// dead-lettered, and the target's position in a partition is the offset
// after its longest done prefix.
type progress struct {
	mu    sync.Mutex
	parts map[partition]*partProgress
}

type partProgress struct {
	pending []*record // in offset order
	next    int64     // position (-1: nothing done yet)
}

func newProgress() *progress { return &progress{parts: map[partition]*partProgress{}} }

// add records that the record at offset gave n events for this target,
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
		pp.pending = pp.pending[1:]
	}
}

// position is the target's position in pt (-1: none yet).
func (p *progress) position(pt partition) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pp := p.parts[pt]; pp != nil {
		return pp.next
	}
	return -1
}

// partitions lists the partitions seen.
func (p *progress) partitions() []partition {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]partition, 0, len(p.parts))
	for pt := range p.parts {
		out = append(out, pt)
	}
	return out
}

// checkpoint is what the notifier commits for one partition: the offset
// every target is past (the group's committed offset) and, in the commit's
// metadata, each target's own position, so that after a restart a target
// that was ahead is not sent again what it already took.
type checkpoint struct {
	offset    int64
	positions map[string]int64
}

// checkpointOf combines the targets' positions in pt; ok is false until
// every target has one.
func checkpointOf(pt partition, names []string, progs []*progress) (checkpoint, bool) {
	cp := checkpoint{offset: -1, positions: map[string]int64{}}
	for i, p := range progs {
		pos := p.position(pt)
		if pos < 0 {
			return cp, false
		}
		cp.positions[names[i]] = pos
		if cp.offset < 0 || pos < cp.offset {
			cp.offset = pos
		}
	}
	return cp, len(progs) > 0
}

// metadata encodes the targets' positions for the commit.
func (cp checkpoint) metadata() string {
	b, err := json.Marshal(cp.positions)
	if err != nil {
		return ""
	}
	return string(b)
}

// positionsFrom decodes the commit metadata (empty or unreadable: none).
func positionsFrom(meta *string) map[string]int64 {
	out := map[string]int64{}
	if meta == nil || *meta == "" {
		return out
	}
	if err := json.Unmarshal([]byte(*meta), &out); err != nil {
		return map[string]int64{}
	}
	return out
}
