package boardsigner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/cefiot/cefiot/libs/pki"
)

// Config places a Signer.
type Config struct {
	// Site is the site whose boards are signed for; a CA of another site
	// is refused.
	Site string
	// CADir holds the site CA as the Secret cefiot-site-ca mounts it
	// (tls.crt, tls.key). It is read for every request, so a rotated CA is
	// used from the next request on.
	CADir string
	// Namespace is the site's namespace: requests of other namespaces are
	// not seen.
	Namespace string
	Policy    Policy
	// Resync is how often every request is looked at again: a replica that
	// becomes leader answers what waited (30 s when 0).
	Resync time.Duration
}

// Signer answers the board credential requests of one namespace while its
// replica leads the site.
type Signer struct {
	client  kubernetes.Interface
	cfg     Config
	leading func() bool
	logger  *slog.Logger
	now     func() time.Time
	results *prometheus.CounterVec
}

// New makes a Signer; leading reports whether this replica leads the site
// (only the leader answers).
func New(client kubernetes.Interface, cfg Config, leading func() bool, reg prometheus.Registerer, logger *slog.Logger) (*Signer, error) {
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	s := &Signer{
		client: client, cfg: cfg, leading: leading, now: time.Now,
		logger: logger.With("signer", SignerName),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_board_credentials_total",
			Help: "Board credential requests (cefiot.io/board) answered, by result (issued, denied) and reason.",
		}, []string{"result", "reason"}),
	}
	if err := reg.Register(s.results); err != nil {
		return nil, fmt.Errorf("board signer metrics: %w", err)
	}
	return s, nil
}

// Run answers requests until ctx ends.
func (s *Signer) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, s.cfg.Resync,
		informers.WithNamespace(s.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.signerName", SignerName).String()
		}))
	informer := factory.Certificates().V1().PodCertificateRequests()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "board-signer"})
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return fmt.Errorf("board signer: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for !s.synced(ctx, factory) {
		if ctx.Err() != nil {
			return nil
		}
		s.logger.Warn("the Kubernetes API has not listed the board credential requests yet: bridge pods wait for their credential", "namespace", s.cfg.Namespace)
	}
	s.logger.Info("answering board credential requests", "namespace", s.cfg.Namespace, "service_account", s.cfg.Policy.ServiceAccount)
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	lister := informer.Lister()
	for {
		key, quit := queue.Get()
		if quit {
			return nil
		}
		err := s.handle(ctx, key, func(ns, name string) (*certificatesv1.PodCertificateRequest, error) {
			return lister.PodCertificateRequests(ns).Get(name)
		})
		switch {
		case err == nil:
			queue.Forget(key)
		case ctx.Err() != nil:
		default:
			s.logger.Warn("board credential request not answered yet", "request", key, "err", err)
			queue.AddRateLimited(key)
		}
		queue.Done(key)
	}
}

// synced waits up to a while for the factory's caches.
func (s *Signer) synced(ctx context.Context, factory informers.SharedInformerFactory) bool {
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, ok := range factory.WaitForCacheSync(waitCtx.Done()) {
		if !ok {
			return false
		}
	}
	return true
}

// handle answers the request called key, if this replica leads and it
// waits for an answer.
func (s *Signer) handle(ctx context.Context, key string, get func(ns, name string) (*certificatesv1.PodCertificateRequest, error)) error {
	if !s.leading() {
		return nil // the resync brings it back if this replica comes to lead
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	req, err := get(ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if req.Spec.SignerName != SignerName || answered(req) {
		return nil
	}
	return s.Answer(ctx, req)
}

// Answer decides req and writes the decision to its status.
func (s *Signer) Answer(ctx context.Context, req *certificatesv1.PodCertificateRequest) error {
	var node *corev1.Node
	n, err := s.client.CoreV1().Nodes().Get(ctx, string(req.Spec.NodeName), metav1.GetOptions{})
	switch {
	case err == nil:
		node = n
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("node %s: %w", req.Spec.NodeName, err)
	}
	ca, err := s.loadCA()
	if err != nil {
		return err
	}
	d, err := Decide(s.cfg.Policy, ca, req, node, s.now())
	if err != nil {
		return err
	}
	out := req.DeepCopy()
	out.Status = d.Status
	if _, err := s.client.CertificatesV1().PodCertificateRequests(req.Namespace).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // gone, or changed: the informer brings the new version
		}
		return fmt.Errorf("status of %s/%s: %w", req.Namespace, req.Name, err)
	}
	log := s.logger.With("request", req.Namespace+"/"+req.Name, "pod", req.Spec.PodName, "node", req.Spec.NodeName)
	if d.Issued != "" {
		s.results.WithLabelValues("issued", "").Inc()
		log.Info("board credential issued", "identity", d.Issued, "not_after", d.Status.NotAfter.Time)
	} else {
		s.results.WithLabelValues("denied", d.Reason).Inc()
		log.Warn("board credential denied", "reason", d.Reason, "message", d.Message)
	}
	return nil
}

func (s *Signer) loadCA() (*pki.CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(s.cfg.CADir, "tls.crt"))
	if err != nil {
		return nil, fmt.Errorf("site CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(s.cfg.CADir, "tls.key"))
	if err != nil {
		return nil, fmt.Errorf("site CA key: %w", err)
	}
	ca, err := pki.ParseCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("site CA in %s: %w", s.cfg.CADir, err)
	}
	if ca.Site != s.cfg.Site {
		return nil, fmt.Errorf("the CA in %s is site %s's, not %s's", s.cfg.CADir, ca.Site, s.cfg.Site)
	}
	return ca, nil
}

// CheckCA reads the CA in dir as the signer will, and checks that it is
// site's: for a configuration check at start.
func CheckCA(dir, site string) error {
	_, err := (&Signer{cfg: Config{CADir: dir, Site: site}}).loadCA()
	return err
}
