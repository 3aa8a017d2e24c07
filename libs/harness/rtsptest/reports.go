package rtsptest

import (
	"net"

	"github.com/pion/rtcp"
)

// The camera's clock reaches clients in RTCP sender reports, which the
// server sends itself (send), mapping its RTP clock to its wall clock
// exactly. gortsplib also sends reports of its own, whose NTP fraction is
// misencoded (nanoseconds where units of 1/2^32 s are due): each would move
// every client's idea of the camera's clock by up to 0.77 s until the next
// correct one. A real camera sends consistent reports; so the server drops
// gortsplib's, told apart by their packet count (the camera's own reports
// carry none), from RTP interleaved in RTSP. Over UDP they still go out
// (gortsplib wants its own *net.UDPConn): a test that checks the camera's
// times reads over TCP.

// isLibraryReport reports whether an RTCP compound packet is one of
// gortsplib's own sender reports.
func isLibraryReport(payload []byte) bool {
	pkts, err := rtcp.Unmarshal(payload)
	if err != nil {
		return false
	}
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok && sr.PacketCount != 0 {
			return true
		}
	}
	return false
}

// reportFilter is a listener whose connections drop gortsplib's sender
// reports from RTP interleaved in RTSP (RFC 2326 section 10.12: '$', the
// channel, odd for RTCP, a 16-bit length, the packet), which gortsplib
// writes one frame a call.
type reportFilter struct{ net.Listener }

func (l reportFilter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return reportFilterConn{c}, nil
}

type reportFilterConn struct{ net.Conn }

func (c reportFilterConn) Write(b []byte) (int, error) {
	if len(b) > 4 && b[0] == '$' && b[1]%2 == 1 && isLibraryReport(b[4:]) {
		return len(b), nil
	}
	return c.Conn.Write(b)
}
