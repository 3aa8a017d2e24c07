// Package check renders the kustomize overlays under k8s/ and checks them
// offline, strictly: every object decodes into its typed Kubernetes API
// struct with unknown fields rejected, and policy checks hold (probes,
// resources, non-root, read-only root filesystem, disruption budgets, image
// names, Service ports against the ports the services listen on, config keys
// against the flags the services accept, and the pipeline spec against the
// workers deployed).
//
// The facts about the services come from the built binaries themselves
// (`<service> -h` lists every flag with its default, `cefiot-images -list`
// the images `make images` builds), never from copies kept here.
package check

import (
	"bytes"
	"errors"
	"fmt"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Object is one rendered Kubernetes object.
type Object struct {
	GVK       schema.GroupVersionKind
	Namespace string
	Name      string
	YAML      []byte         // as kustomize rendered it
	Typed     runtime.Object // strictly decoded
}

// ID names the object in error messages: Kind namespace/name.
func (o Object) ID() string {
	return fmt.Sprintf("%s %s/%s", o.GVK.Kind, o.Namespace, o.Name)
}

// Render builds the kustomization in dir (read from fsys) and decodes every
// object strictly. Errors name the object and the offending field.
func Render(fsys filesys.FileSystem, dir string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var objs []Object
	var errs []error
	for _, r := range resMap.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.CurId(), err))
			continue
		}
		obj, err := DecodeStrict(y)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s/%s: %w", r.GetKind(), r.GetNamespace(), r.GetName(), err))
			continue
		}
		objs = append(objs, obj)
	}
	return objs, errors.Join(errs...)
}

// strictDecoder knows the Kubernetes API and the custom resources cefiot's
// optional components use: cert-manager by its real Go types, CloudNativePG's
// Cluster by a minimal local type (cnpg.go).
var strictDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	utilruntime.Must(scheme.AddToScheme(s))
	utilruntime.Must(certmanagerv1.AddToScheme(s))
	utilruntime.Must(addCNPGToScheme(s))
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// DecodeStrict decodes one YAML object into its typed API struct. Unknown
// fields, duplicate fields and kinds the API does not know are errors.
func DecodeStrict(y []byte) (Object, error) {
	typed, gvk, err := strictDecoder.Decode(y, nil, nil)
	if err != nil {
		return Object{}, fmt.Errorf("strict decode: %w", err)
	}
	acc, ok := typed.(interface {
		GetName() string
		GetNamespace() string
	})
	if !ok {
		return Object{}, fmt.Errorf("strict decode: %s has no object metadata", gvk)
	}
	return Object{GVK: *gvk, Namespace: acc.GetNamespace(), Name: acc.GetName(), YAML: bytes.Clone(y), Typed: typed}, nil
}
