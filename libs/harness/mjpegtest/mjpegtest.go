// Package mjpegtest serves a generated video as an HTTP MJPEG stream
// (multipart/x-mixed-replace, as IP cameras do) that a test can stop and
// restart on the same address, to exercise reconnects.
package mjpegtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// Server streams the frames of a videogen spec in a loop at spec.FPS.
type Server struct {
	Addr   string // host:port, fixed across restarts
	frames [][]byte

	mu     sync.Mutex
	srv    *http.Server
	cancel context.CancelFunc
	served int64
}

// New renders spec's frames as JPEGs and listens on a free loopback port.
func New(spec videogen.Spec) (*Server, error) {
	r, err := videogen.NewRenderer(spec)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m := gocv.NewMat()
	defer m.Close()
	s := &Server{}
	for i := 0; i < spec.Frames; i++ {
		if err := r.Frame(i, &m); err != nil {
			return nil, err
		}
		buf, err := gocv.IMEncode(gocv.JPEGFileExt, m)
		if err != nil {
			return nil, err
		}
		s.frames = append(s.frames, append([]byte(nil), buf.GetBytes()...))
		buf.Close()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.Addr = l.Addr().String()
	s.serve(l, spec.FPS)
	return s, nil
}

// URL is the stream's address.
func (s *Server) URL() string { return "http://" + s.Addr + "/stream.mjpg" }

func (s *Server) serve(l net.Listener, fps float64) {
	ctx, cancel := context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("/stream.mjpg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace;boundary=cefiotframe")
		t := time.NewTicker(time.Duration(float64(time.Second) / fps))
		defer t.Stop()
		for i := 0; ; i++ {
			if err := writePart(w, s.frames[i%len(s.frames)]); err != nil {
				return
			}
			s.mu.Lock()
			s.served++
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
	})
	srv := &http.Server{Handler: mux}
	s.mu.Lock()
	s.srv, s.cancel = srv, cancel
	s.mu.Unlock()
	go srv.Serve(l)
}

// Stop closes the listener and every open stream, like a camera losing
// power.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, cancel := s.srv, s.cancel
	s.srv, s.cancel = nil, nil
	s.mu.Unlock()
	if srv != nil {
		cancel()
		srv.Close()
	}
}

// Restart listens again on the same address.
func (s *Server) Restart(fps float64) error {
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly
		if l, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse(err)) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err != nil {
		return fmt.Errorf("mjpegtest: relisten on %s: %w", s.Addr, err)
	}
	s.serve(l, fps)
	return nil
}

func errAddrInUse(err error) error { return err }

// Served returns how many frames were written so far.
func (s *Server) Served() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}
