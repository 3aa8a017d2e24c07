package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server is a running console.
type Server struct {
	srv *http.Server
	ln  net.Listener
	h   *Handler
}

// Start serves the console for targets on addr ("127.0.0.1:0" picks a free
// port) until Close.
func Start(addr string, targets []Target, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	h, err := New(targets, logger)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("console: listen %s: %w", addr, err)
	}
	s := &Server{ln: ln, h: h, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("console server", "err", err)
		}
	}()
	return s, nil
}

// URL is the console's address, e.g. http://127.0.0.1:8080/.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Close stops the server; open streams end.
func (s *Server) Close(ctx context.Context) error {
	s.h.Close()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}
