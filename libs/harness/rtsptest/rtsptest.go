// Package rtsptest serves a generated video as an RTSP camera on loopback:
// Motion JPEG over RTP (RFC 2435), or H.264 (RFC 6184) or H.265 (RFC 7798)
// encoded by Debian's ffmpeg, sent over UDP or interleaved in the RTSP TCP
// connection, whichever the client sets up; optionally with a sub-stream
// of the same scene at a lower resolution, as NVR cameras offer. A test
// can stop the server
// (every session is closed, like a camera losing power) and restart it on
// the same address to exercise reconnects.
package rtsptest

import (
	"errors"
	"fmt"
	"image"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmjpeg"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// Path is the stream's path on the server; SubPath the sub-stream's, when
// the server has one.
const (
	Path    = "/cam"
	SubPath = "/cam/sub"
)

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
	// SubStream, when not zero, is the size of a second, low-resolution
	// stream at SubPath (H.264 or H.265 only): the main stream's pictures
	// scaled down, sent picture for picture with it, as NVR cameras offer.
	SubStream image.Point
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
	sub        h26x     // the sub-stream, when there is one
	fps        float64
	udp        bool
	rtp, rtcp  string // UDP addresses when udp, fixed across restarts

	mu           sync.Mutex
	srv          *gortsplib.Server
	stream       *gortsplib.ServerStream
	subStream    *gortsplib.ServerStream
	stop, done   chan struct{}
	transports   []string
	unauthorized int
	sent         []sentPicture
}

// sentPicture is a picture the server sent: its number in the loop of the
// run that sent it, and its time by the camera's clock (what its RTCP
// sender reports tell clients).
type sentPicture struct {
	index int
	at    time.Time
}

// maxSent bounds the pictures the server remembers.
const maxSent = 100000

// senderReportInterval is how often the server sends an RTCP sender
// report on each stream, as cameras do every few seconds.
const senderReportInterval = time.Second

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
		if s.video, err = encodeH26x(spec, opts.Codec, image.Point{}); err != nil {
			return nil, err
		}
		if opts.SubStream != (image.Point{}) {
			if s.sub, err = encodeH26x(spec, opts.Codec, opts.SubStream); err != nil {
				return nil, err
			}
		}
	}
	if opts.SubStream != (image.Point{}) && s.codec == CodecMJPEG {
		return nil, errors.New("rtsptest: a sub-stream needs H.264 or H.265")
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

// SubURL is the camera's sub-stream address.
func (s *Server) SubURL() string { return "rtsp://" + s.Addr + SubPath }

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
	return h.s.current(ctx.Path)
}

func (h handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if res := h.s.refused(ctx.Request); res != nil {
		return res, nil, nil
	}
	res, stream, err := h.s.current(ctx.Path)
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

func (s *Server) current(path string) (*base.Response, *gortsplib.ServerStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stream := s.stream
	if strings.HasPrefix(path, SubPath) {
		stream = s.subStream
	}
	if stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, stream, nil
}

// start listens on addr and starts sending frames.
func (s *Server) start(addr string) error {
	var bound net.Addr
	srv := &gortsplib.Server{
		Handler:     handler{s},
		RTSPAddress: addr,
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			bound = l.Addr()
			return reportFilter{l}, nil
		},
	}
	if s.udp {
		srv.UDPRTPAddress, srv.UDPRTCPAddress = s.rtp, s.rtcp
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("rtsptest: listen on %s: %w", addr, err)
	}
	main, err := s.newOutput(srv, s.video)
	if err != nil {
		srv.Close()
		return err
	}
	outputs := []output{main}
	if s.sub.units != nil {
		sub, err := s.newOutput(srv, s.sub)
		if err != nil {
			main.stream.Close()
			srv.Close()
			return err
		}
		outputs = append(outputs, sub)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.srv, s.stream, s.stop, s.done = srv, main.stream, stop, done
	if len(outputs) > 1 {
		s.subStream = outputs[1].stream
	}
	if s.Addr == "" {
		s.Addr = bound.String()
	}
	s.mu.Unlock()
	go s.send(outputs, stop, done)
	return nil
}

// output is one stream the server sends.
type output struct {
	stream *gortsplib.ServerStream
	media  *description.Media
	enc    func(int) ([]*rtp.Packet, error)
}

func (s *Server) newOutput(srv *gortsplib.Server, video h26x) (output, error) {
	forma, enc, err := s.encoder(video)
	if err != nil {
		return output{}, err
	}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	return output{stream: gortsplib.NewServerStream(srv, &description.Session{Medias: []*description.Media{media}}), media: media, enc: enc}, nil
}

// send writes the frames as RTP packets at the server's frame rate until
// stop is closed: picture i of every output at the same moment.
func (s *Server) send(outputs []output, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(time.Duration(float64(time.Second) / s.fps))
	defer t.Stop()
	start := time.Now()
	var reported time.Time
	for i := 0; ; i++ {
		ts := uint32(time.Since(start) * 90000 / time.Second) // 90 kHz video clock
		// The camera's wall clock runs with its RTP clock, exactly.
		at := start.Add(time.Duration(ts) * time.Second / 90000)
		s.noteSent(i, at)
		report := at.Sub(reported) >= senderReportInterval
		if report {
			reported = at
		}
		for _, o := range outputs {
			pkts, err := o.enc(i)
			if err != nil {
				panic(fmt.Sprintf("rtsptest: picture %d: %v", i, err)) // New checked every frame
			}
			for _, p := range pkts {
				p.Timestamp = ts
				// An error means no reader can take the packet right now,
				// as with a camera nobody watches: nothing to do.
				_ = o.stream.WritePacketRTPWithNTP(o.media, p, at)
			}
			if report && len(pkts) > 0 {
				_ = o.stream.WritePacketRTCP(o.media, &rtcp.SenderReport{SSRC: pkts[0].SSRC, NTPTime: ntpTime(at), RTPTime: ts})
			}
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// noteSent remembers that picture i of the loop went out at time at.
func (s *Server) noteSent(i int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) == maxSent {
		s.sent = append(s.sent[:0], s.sent[maxSent/2:]...)
	}
	s.sent = append(s.sent, sentPicture{index: i, at: at})
}

// SentAt tells which picture the server sent at time at by its clock
// (within 1 ms): its number in the loop of the run that sent it (the
// scene's frame number is that modulo the spec's frames).
func (s *Server) SentAt(at time.Time) (index int, ok bool) {
	index, off := s.NearestSent(at)
	return index, off < time.Millisecond && off > -time.Millisecond
}

// NearestSent is the picture sent nearest to time at by the server's
// clock, and how far from at it was sent.
func (s *Server) NearestSent(at time.Time) (index int, off time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off = time.Duration(math.MaxInt64)
	for _, p := range s.sent {
		if d := p.at.Sub(at); d.Abs() < off.Abs() {
			index, off = p.index, d
		}
	}
	return index, off
}

// ntpTime is t as an NTP timestamp (seconds since 1900 in the upper 32
// bits, their fraction in the lower), as RTCP sender reports carry it.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	secs := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// encoder returns the stream's format and what turns its picture i (looped)
// into RTP packets.
func (s *Server) encoder(video h26x) (format.Format, func(int) ([]*rtp.Packet, error), error) {
	switch s.codec {
	case CodecH264:
		f := &format.H264{PayloadTyp: 96, SPS: video.sps, PPS: video.pps, PacketizationMode: 1}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, nil, fmt.Errorf("rtsptest: RTP/H.264 encoder: %w", err)
		}
		return f, func(i int) ([]*rtp.Packet, error) { return enc.Encode(video.units[i%len(video.units)]) }, nil
	case CodecH265:
		f := &format.H265{PayloadTyp: 96, VPS: video.vps, SPS: video.sps, PPS: video.pps}
		enc, err := f.CreateEncoder()
		if err != nil {
			return nil, nil, fmt.Errorf("rtsptest: RTP/H.265 encoder: %w", err)
		}
		return f, func(i int) ([]*rtp.Packet, error) { return enc.Encode(video.units[i%len(video.units)]) }, nil
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
	srv, stream, sub, stop, done := s.srv, s.stream, s.subStream, s.stop, s.done
	s.srv, s.stream, s.subStream, s.stop, s.done = nil, nil, nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	close(stop)
	<-done
	stream.Close()
	if sub != nil {
		sub.Close()
	}
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
