// Package admin runs the admin endpoints every cefiot service exposes: a
// gRPC server (with health and reflection), the grpc-gateway REST/JSON
// translation of the same API, and Prometheus metrics at /metrics.
//
// The gRPC API listens on one address and HTTP (REST, /metrics, /healthz)
// on another, so that each can be exposed, probed and secured separately.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/encoding/protojson"
)

// GatewayRegistrar registers a service's REST handlers against the gRPC
// endpoint (the generated Register<Service>HandlerFromEndpoint functions).
type GatewayRegistrar func(ctx context.Context, mux *runtime.ServeMux, endpoint string, opts []grpc.DialOption) error

// Config says where the admin server listens.
type Config struct {
	GRPCAddr string // e.g. 127.0.0.1:9090; port 0 picks a free port
	HTTPAddr string // e.g. 127.0.0.1:8080; port 0 picks a free port
}

// Server is the admin server of one service.
type Server struct {
	logger   *slog.Logger
	registry *prometheus.Registry
	grpc     *grpc.Server
	health   *health.Server
	httpMux  *http.ServeMux
	gateway  *runtime.ServeMux

	grpcLis net.Listener
	httpLis net.Listener

	mu       sync.Mutex
	gateways []GatewayRegistrar
}

// New listens on both addresses and prepares the servers. Services are
// registered on GRPC() and with AddGateway before Run.
func New(cfg Config, registry *prometheus.Registry, logger *slog.Logger) (*Server, error) {
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("admin grpc listen on %q: %w", cfg.GRPCAddr, err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		return nil, fmt.Errorf("admin http listen on %q: %w", cfg.HTTPAddr, err)
	}
	registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	srvMetrics := grpcprom.NewServerMetrics()
	registry.MustRegister(srvMetrics)
	g := grpc.NewServer(
		grpc.ChainUnaryInterceptor(srvMetrics.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(srvMetrics.StreamServerInterceptor()),
	)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)

	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := hs.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	// Profiles of the running process (CPU, heap, goroutines), for finding
	// where the time goes under real load (make bench reads them). Not the
	// command line: it may carry a secret passed as a flag.
	mux.HandleFunc("/debug/pprof/cmdline", http.NotFound)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", gw)
	return &Server{
		logger: logger, registry: registry, grpc: g, health: hs,
		httpMux: mux, gateway: gw, grpcLis: grpcLis, httpLis: httpLis,
	}, nil
}

// GRPC returns the gRPC server to register services on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// AddGateway adds REST handlers for a service registered on GRPC().
func (s *Server) AddGateway(r GatewayRegistrar) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gateways = append(s.gateways, r)
}

// Handle adds a plain HTTP handler (served before the gateway's routes).
func (s *Server) Handle(pattern string, h http.Handler) { s.httpMux.Handle(pattern, h) }

// GRPCAddr is the address the gRPC server listens on.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the address the HTTP server listens on.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// SetServing marks the process (empty service name) or a service as
// serving or not serving in the gRPC health service.
func (s *Server) SetServing(service string, serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus(service, st)
}

// Run serves until ctx ends, then stops both servers gracefully.
func (s *Server) Run(ctx context.Context) error {
	conn := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	s.mu.Lock()
	for _, r := range s.gateways {
		if err := r(ctx, s.gateway, s.GRPCAddr(), conn); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("register gateway: %w", err)
		}
	}
	s.mu.Unlock()

	httpSrv := &http.Server{Handler: s.httpMux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- s.grpc.Serve(s.grpcLis) }()
	go func() {
		err := httpSrv.Serve(s.httpLis)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	s.logger.Info("admin server listening", "grpc", s.GRPCAddr(), "http", s.HTTPAddr())

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("admin server: %w", err)
	}
	s.health.Shutdown()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = httpSrv.Shutdown(shutdownCtx)
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-shutdownCtx.Done():
		s.grpc.Stop()
	}
	return err
}
