package forward

import "time"

// Transaction size bounds of the adaptive budget.
const (
	firstTxnBytes = 1 << 20
	minTxnBytes   = 64 << 10
	quickCommit   = time.Second
	// idleClose commits an open transaction once the edge consumer has
	// had nothing for this long, instead of waiting out BatchWait.
	idleClose  = 20 * time.Millisecond
	slowCommit = 3 * time.Second
)

// adapt updates the transaction budget after a transaction of took.
func (s *session) adapt(took time.Duration, bytes int) {
	switch {
	case took < quickCommit && bytes >= s.txnBytes/2:
		s.txnBytes = min(2*s.txnBytes, s.cfg.BatchBytes)
	case took > slowCommit:
		s.txnBytes = max(s.txnBytes/2, minTxnBytes)
	}
}
