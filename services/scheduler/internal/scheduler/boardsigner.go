package scheduler

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cefiot/cefiot/services/scheduler/internal/boardsigner"
)

// serviceAccountNamespace is where the kubelet writes the pod's namespace
// beside its service account token.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// startBoardSigner connects to the Kubernetes API as the pod's service
// account and makes the board signer of the pod's namespace.
func startBoardSigner(cfg Config, leading func() bool, reg prometheus.Registerer, logger *slog.Logger) (*boardsigner.Signer, error) {
	restCfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("config key board-signer-ca: the board signer answers a Kubernetes API from a pod with a service account token: %w", err)
	}
	ns, err := os.ReadFile(serviceAccountNamespace)
	if err != nil {
		return nil, fmt.Errorf("config key board-signer-ca: the pod's namespace: %w", err)
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("config key board-signer-ca: %w", err)
	}
	return boardsigner.New(client, boardsigner.Config{
		Site: cfg.Site, CADir: cfg.BoardSignerCA, Namespace: strings.TrimSpace(string(ns)),
		Policy: boardsigner.Policy{ServiceAccount: boardsigner.DefaultServiceAccount, Lifetime: boardsigner.MaxLifetime},
	}, leading, reg, logger)
}
