// Package admin runs the admin endpoints every cefiot service exposes: a
// gRPC server (with health and reflection), the grpc-gateway REST/JSON
// translation of the same API, and Prometheus metrics at /metrics.
//
// The gRPC API listens on one address and HTTP (REST, /metrics, /healthz)
// on another, so that each can be exposed, probed and secured separately.
//
// With a TLS source (the default of every service) both are mutual TLS:
// gRPC requires a client certificate of the site and authorizes each call
// on the caller's identity (Config.Policy); HTTPS requires one on every
// path but /healthz (so that a kubelet probe can read it), authorizes
// /metrics, /debug/pprof and plain handlers on the caller's role, and
// hands REST calls to the gRPC server over an in-process connection that
// carries the caller's identity, so REST and gRPC answer to the same
// policy.
package admin

import (
	"context"
	"crypto/tls"
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
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/audit"
	"github.com/cefiot/cefiot/libs/httpguard"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// GatewayRegistrar registers a service's REST handlers against the gRPC
// endpoint (the generated Register<Service>HandlerFromEndpoint functions).
type GatewayRegistrar func(ctx context.Context, mux *runtime.ServeMux, endpoint string, opts []grpc.DialOption) error

// Config says where the admin server listens and whom it answers.
type Config struct {
	GRPCAddr string // e.g. 127.0.0.1:9090; port 0 picks a free port
	HTTPAddr string // e.g. 127.0.0.1:8080; port 0 picks a free port
	// TLS is the process's key pair and trust bundle; nil serves
	// plaintext to anyone (-insecure-plaintext).
	TLS *tlsx.Source
	// Policy authorizes gRPC (and REST) calls when TLS is set. The
	// methods it names one by one change state: each call of one is
	// audited (SetAudit).
	Policy tlsx.Policy
	// Service names the process in audit records.
	Service string
}

// Server is the admin server of one service.
type Server struct {
	logger   *slog.Logger
	registry *prometheus.Registry
	grpc     *grpc.Server
	health   *health.Server
	httpMux  *http.ServeMux
	gateway  *runtime.ServeMux

	grpcLis   net.Listener
	httpLis   net.Listener
	inProcess *bufconn.Listener // the gateway's connection to the gRPC server
	tls       *tlsx.Source
	site      string
	service   string
	policy    tlsx.Policy

	mu       sync.Mutex
	gateways []GatewayRegistrar
	audit    audit.Sink
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
	srv := &Server{
		logger: logger, registry: registry, service: cfg.Service, policy: cfg.Policy, site: cfg.Policy.Site,
		tls: cfg.TLS, grpcLis: grpcLis, httpLis: httpLis, inProcess: bufconn.Listen(1 << 20),
		audit: audit.Log{Logger: logger},
	}
	unary := []grpc.UnaryServerInterceptor{srvMetrics.UnaryServerInterceptor(), srv.auditInterceptor()}
	stream := []grpc.StreamServerInterceptor{srvMetrics.StreamServerInterceptor()}
	opts := []grpc.ServerOption{}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(cfg.TLS.ServerCredentials()))
		unary = append(unary, cfg.Policy.UnaryInterceptor())
		stream = append(stream, cfg.Policy.StreamInterceptor())
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	g := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)

	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		// The caller's verified identity travels to the gRPC server as
		// metadata; a client's own header of that name is never passed on.
		runtime.WithIncomingHeaderMatcher(forwardHeader),
		runtime.WithMetadata(forwardCaller),
	)
	srv.grpc, srv.health, srv.gateway = g, hs, gw
	mux := http.NewServeMux()
	srv.httpMux = mux
	mux.Handle("/metrics", srv.require(access.Scrapers(), promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry})))
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
	mux.Handle("/debug/pprof/", srv.require(access.Profilers(), http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/profile", srv.require(access.Profilers(), http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", srv.require(access.Profilers(), http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/debug/pprof/trace", srv.require(access.Profilers(), http.HandlerFunc(pprof.Trace)))
	mux.Handle("/", gw)
	return srv, nil
}

// GRPC returns the gRPC server to register services on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// AddGateway adds REST handlers for a service registered on GRPC().
func (s *Server) AddGateway(r GatewayRegistrar) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gateways = append(s.gateways, r)
}

// Handle adds a plain HTTP handler (served before the gateway's routes)
// that observers of the site may call.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.httpMux.Handle(pattern, s.require(access.Observers(), h))
}

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
	conn := []grpc.DialOption{
		s.tls.DialOption(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.inProcess.DialContext(ctx) }),
	}
	s.mu.Lock()
	for _, r := range s.gateways {
		// passthrough: the in-process dialer ignores the address.
		if err := r(ctx, s.gateway, "passthrough:///in-process", conn); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("register gateway: %w", err)
		}
	}
	s.mu.Unlock()

	guard := httpguard.Guard{Hosts: httpguard.LocalHosts(s.HTTPAddr())}
	if s.tls != nil {
		guard = httpguard.Guard{Hosts: s.tls.Names, TLS: true}
	}
	httpSrv := &http.Server{Handler: s.auditRefusals(guard.Wrap(s.authenticate(s.httpMux))), ReadHeaderTimeout: 10 * time.Second, ErrorLog: tlsx.HandshakeLog(s.logger)}
	httpLis := s.httpLis
	if s.tls != nil {
		httpLis = tls.NewListener(httpLis, s.tls.HTTPServerConfig())
	}
	errc := make(chan error, 3)
	go func() { errc <- s.grpc.Serve(s.grpcLis) }()
	go func() { errc <- s.grpc.Serve(s.inProcess) }()
	go func() {
		err := httpSrv.Serve(httpLis)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	s.logger.Info("admin server listening", "grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "tls", s.tls != nil)

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
