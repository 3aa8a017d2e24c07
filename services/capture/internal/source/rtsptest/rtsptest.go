// Package rtsptest serves a generated video as an RTSP camera on loopback:
// Motion JPEG over RTP (RFC 2435), or H.264 (RFC 6184) or H.265 (RFC 7798)
// encoded by Debian's ffmpeg, sent over UDP or interleaved in the RTSP TCP
// connection, whichever the client sets up. A test can stop the server
// (every session is closed, like a camera losing power) and restart it on
// the same address to exercise reconnects.
package rtsptest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmjpeg"
	"github.com/pion/rtp"
	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// Path is the stream's path on the server.
const Path = "/cam"

// Options choose what the server offers.
type Options struct {
	// UDP offers RTP over UDP (on two more loopback ports) besides RTP
	// interleaved in the RTSP TCP connection. Without it a client asking
	// for UDP gets 461 Unsupported Transport and has to retry with TCP.
	UDP bool
	// Codec is CodecMJPEG (the default), CodecH264 or CodecH265; the
	// last two need Debian's ffmpeg (with libx264 and libx265).
	Codec string
	// User and Password, when set, are required of every client (RTSP
	// Digest authentication), as a real camera requires them.
	User, Password string
}

// Server streams the frames of a videogen spec in a loop at spec.FPS.
type Server struct {
	// Addr is the RTSP listener's host:port, fixed across restarts.
	Addr string

	codec      string
	user, pass string
	nonce      string
	frames     [][]byte // MJPEG: JPEGs
	video      h26x     // H.264, H.265
	fps        float64
	udp        bool
	rtp, rtcp  string // UDP addresses when udp, fixed across restarts

	mu           sync.Mutex
	srv          *gortsplib.Server
	stream       *gortsplib.ServerStream
	stop, done   chan struct{}
	transports   []string
	unauthorized int
}

// New renders spec's frames as JPEGs and serves them on a free loopback
// port.
func New(spec videogen.Spec, opts Options) (*Server, error) {
	if spec.FPS <= 0 {
		return nil, fmt.Errorf("rtsptest: fps %v: must be positive", spec.FPS)
	}
	s := &Server{codec: opts.Codec, fps: spec.FPS, udp: opts.UDP, user: opts.User, pass: opts.Password}
	var err error
	if s.nonce, err = auth.GenerateNonce(); err != nil {
		return nil, fmt.Errorf("rtsptest: %w", err)
	}
	switch opts.Codec {
	case "", CodecMJPEG:
		s.codec = CodecMJPEG
		if spec.Width%8 != 0 || spec.Height%8 != 0 {
			return nil, fmt.Errorf("rtsptest: %dx%d: RTP/JPEG needs a width and height that are multiples of 8", spec.Width, spec.Height)
		}
		if s.frames, err = encodeFrames(spec); err != nil {
			return nil, err
		}
	default:
		if s.video, err = encodeH26x(spec, opts.Codec); err != nil {
			return nil, err
		}
	}
	if s.udp {
		if s.rtp, s.rtcp, err = freeUDPPair(); err != nil {
			return nil, err
		}
	}
	if err := s.start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return s, nil
}

// encodeFrames renders spec and checks that every frame can be sent as
// RTP/JPEG, so that sending cannot fail later.
func encodeFrames(spec videogen.Spec) ([][]byte, error) {
	r, err := videogen.NewRenderer(spec)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m := gocv.NewMat()
	defer m.Close()
	enc := &rtpmjpeg.Encoder{}
	if err := enc.Init(); err != nil {
		return nil, err
	}
	var frames [][]byte
	for i := 0; i < spec.Frames; i++ {
		if err := r.Frame(i, &m); err != nil {
			return nil, err
		}
		buf, err := gocv.IMEncode(gocv.JPEGFileExt, m)
		if err != nil {
			return nil, fmt.Errorf("rtsptest: encode frame %d: %w", i, err)
		}
		jpeg := append([]byte(nil), buf.GetBytes()...)
		buf.Close()
		if _, err := enc.Encode(jpeg); err != nil {
			return nil, fmt.Errorf("rtsptest: frame %d cannot be sent as RTP/JPEG: %w", i, err)
		}
		frames = append(frames, jpeg)
	}
	return frames, nil
}

// URL is the camera's address.
func (s *Server) URL() string { return "rtsp://" + s.Addr + Path }

// URLWithCredentials is the camera's address with its user and password
// in it, as operators configure cameras.
func (s *Server) URLWithCredentials() string {
	return "rtsp://" + url.UserPassword(s.user, s.pass).String() + "@" + s.Addr + Path
}

// Transports returns the transport of every SETUP so far ("UDP" or "TCP"),
// oldest first.
func (s *Server) Transports() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.transports...)
}

// freeUDPPair finds an even loopback port whose successor is free too, as
// RTP and RTCP need.
func freeUDPPair() (rtp, rtcp string, err error) {
	for i := 0; i < 100; i++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", "", fmt.Errorf("rtsptest: UDP port: %w", err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		_ = c.Close()
		if port%2 != 0 || port >= 65535 {
			continue
		}
		c2, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err != nil {
			continue
		}
		_ = c2.Close()
		return fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", port+1), nil
	}
	return "", "", errors.New("rtsptest: no free pair of UDP ports for RTP and RTCP")
}

// handler answers DESCRIBE, SETUP and PLAY for any path with the stream.
type handler struct{ s *Server }

func (h handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res := h.s.refused(ctx.Request); res != nil {
		return res, nil, nil
	}
	return h.s.current()
}

func (h handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res := h.s.refused(ctx.Request); res != nil {
		return res, nil, nil
	}
	res, stream, err := h.s.current()
	if stream != nil {
		h.s.mu.Lock()
		h.s.transports = append(h.s.transports, ctx.Transport.String())
		h.s.mu.Unlock()
	}
	return res, stream, err
}

func (h handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	if res := h.s.refused(ctx.Request); res != nil {
		return res, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// refused answers 401 to a request without the server's credentials (nil
// when it has them or the server needs none), and counts it.
func (s *Server) refused(req *base.Request) *base.Response {
	if s.user == "" {
		return nil
	}
	// Digest with MD5, as IP cameras ask (FFmpeg knows no SHA-256 digest).
	methods := []auth.ValidateMethod{auth.ValidateMethodDigestMD5}
	if err := auth.Validate(req, s.user, s.pass, methods, "cefiot-test-camera", s.nonce); err == nil {
		return nil
	}
	s.mu.Lock()
	s.unauthorized++
	s.mu.Unlock()
	return &base.Response{
		StatusCode: base.StatusUnauthorized,
		Header:     base.Header{"WWW-Authenticate": auth.GenerateWWWAuthenticate(methods, "cefiot-test-camera", s.nonce)},
	}
}

// Unauthorized is how many requests the server refused for lack of
// credentials (a client's first request, before it is challenged, counts).
func (s *Server) Unauthorized() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unauthorized
}

func (s *Server) current() (*base.Response, *gortsplib.ServerStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, s.stream, nil
}

// start listens on addr and starts sending frames.
func (s *Server) start(addr string) error {
	var bound net.Addr
	srv := &gortsplib.Server{
		Handler:     handler{s},
		RTSPAddress: addr,
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err == nil {
				bound = l.Addr()
			}
			return l, err
		},
	}
	if s.udp {
		srv.UDPRTPAddress, srv.UDPRTCPAddress = s.rtp, s.rtcp
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("rtsptest: listen on %s: %w", addr, err)
	}
	forma, enc, err := s.encoder()
	if err != nil {
		srv.Close()
		return err
	}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	stream := gortsplib.NewServerStream(srv, &description.Session{Medias: []*description.Media{media}})
	stop, done := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.srv, s.stream, s.stop, s.done = srv, stream, stop, done
	if s.Addr == "" {
		s.Addr = bound.String()
	}
	s.mu.Unlock()
	go s.send(stream, media, enc, stop, done)
	return nil
}

// send writes the frames as RTP packets at the server's frame rate until
// stop is closed.
func (s *Server) send(stream *gortsplib.ServerStream, media *description.Media, enc func(int) ([]*rtp.Packet, error), stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(time.Duration(float64(time.Second) / s.fps))
	defer t.Stop()
	start := time.Now()
	for i := 0; ; i++ {
		pkts, err := enc(i)
		if err != nil {
			panic(fmt.Sprintf("rtsptest: picture %d: %v", i, err)) // New checked every frame
		}
		ts := uint32(time.Since(start) * 90000 / time.Second) // 90 kHz video clock
		for _, p := range pkts {
			p.Timestamp = ts
			// An error means no reader can take the packet right now, as
			// with a camera nobody watches: nothing to do.
			_ = stream.WritePacketRTP(media, p)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// encoder returns the stream's format and what turns its picture i (looped)
// into RTP packets.
func (s *Server) encoder() (format.Format, func(int) ([]*rtp.Packet, error), error) {
	switch s.codec {
	case CodecH264:
		f := &format.H264{PayloadTyp: 96, SPS: s.video.sps, PPS: s.video.pps, PacketizationMode: 1}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, nil, fmt.Errorf("rtsptest: RTP/H.264 encoder: %w", err)
		}
		return f, func(i int) ([]*rtp.Packet, error) { return enc.Encode(s.video.units[i%len(s.video.units)]) }, nil
	case CodecH265:
		f := &format.H265{PayloadTyp: 96, VPS: s.video.vps, SPS: s.video.sps, PPS: s.video.pps}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, nil, fmt.Errorf("rtsptest: RTP/H.265 encoder: %w", err)
		}
		return f, func(i int) ([]*rtp.Packet, error) { return enc.Encode(s.video.units[i%len(s.video.units)]) }, nil
	default:
		f := &format.MJPEG{}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, nil, fmt.Errorf("rtsptest: RTP/JPEG encoder: %w", err)
		}
		return f, func(i int) ([]*rtp.Packet, error) { return enc.Encode(s.frames[i%len(s.frames)]) }, nil
	}
}

// Stop closes the listeners and every session, like a camera losing power.
// It is safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, stream, stop, done := s.srv, s.stream, s.stop, s.done
	s.srv, s.stream, s.stop, s.done = nil, nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	close(stop)
	<-done
	stream.Close()
	srv.Close()
}

// Restart serves again on the same address (and UDP ports), retrying for up
// to 5 s while a port lingers.
func (s *Server) Restart() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.start(s.Addr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond) // wait for the port to be free again
	}
}
