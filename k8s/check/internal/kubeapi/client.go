package kubeapi

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// FieldManager is the manager name of every apply.
const FieldManager = "cefiot-check"

// Client applies objects to a kube-apiserver one at a time, and reports
// the warnings the server gave with each answer.
type Client struct {
	mu       sync.Mutex
	dyn      *dynamic.DynamicClient
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	warnings []string
}

// NewClient connects to the server cfg names.
func NewClient(cfg *rest.Config) (*Client, error) {
	c := &Client{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = warningRecorder{c}
	var err error
	if c.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	return c, nil
}

type warningRecorder struct{ c *Client }

// HandleWarningHeader is called with c.mu held: requests are made one at
// a time.
func (w warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.c.warnings = append(w.c.warnings, text)
}

// Answer is what the server said to one request.
type Answer struct {
	// Object is the object as the server would store it (defaults set).
	Object *unstructured.Unstructured
	// Warnings are the server's Warning headers (Pod Security, deprecated
	// fields, unknown fields under Warn validation).
	Warnings []string
}

// Apply applies one object, given as YAML or JSON, server-side with
// strict field validation; with dryRun it goes through every admission
// step and is not stored.
func (c *Client) Apply(ctx context.Context, doc []byte, dryRun bool) (Answer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warnings = nil
	u, ri, err := c.resourceFor(doc)
	if err != nil {
		return Answer{}, err
	}
	body, err := u.MarshalJSON()
	if err != nil {
		return Answer{}, err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force, FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, body, opts)
	ans := Answer{Object: out, Warnings: c.warnings}
	if err != nil {
		return ans, fmt.Errorf("apply %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return ans, nil
}

// Get reads an object.
func (c *Client) Get(ctx context.Context, gvk schema.GroupVersionKind, namespace, name string) (*unstructured.Unstructured, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := c.mapping(gvk)
	if err != nil {
		return nil, err
	}
	return c.resource(m, namespace).Get(ctx, name, metav1.GetOptions{})
}

func (c *Client) resourceFor(doc []byte) (*unstructured.Unstructured, dynamic.ResourceInterface, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("object: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, nil, fmt.Errorf("object: %w", err)
	}
	m, err := c.mapping(u.GroupVersionKind())
	if err != nil {
		return nil, nil, err
	}
	return u, c.resource(m, u.GetNamespace()), nil
}

// mapping finds the resource serving gvk, asking the server again once
// when it is not known yet (a custom resource whose definition was just
// created).
func (c *Client) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("resource for %s: %w", gvk, err)
	}
	return m, nil
}

func (c *Client) resource(m *meta.RESTMapping, namespace string) dynamic.ResourceInterface {
	r := c.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return r.Namespace(namespace)
	}
	return r
}
