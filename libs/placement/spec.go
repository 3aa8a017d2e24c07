package placement

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

var labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$`)

// Spec is a site's pipeline spec: the workloads the scheduler places.
//
//	site: edge
//	workloads:
//	  - name: capture:cam-1
//	    kind: capture
//	    params: {camera: cam-1, source: /videos/door.avi}
//	    nodeSelector: {camera: cam-1}
//	  - name: enrich
//	    kind: enrich
//	    spreadBy: node
//
// A workload runs in the spec's site; `cefiotctl move -to-site` moves it
// to another site at run time, and applying the spec again keeps it there.
type Spec struct {
	Site      string         `yaml:"site"`
	Workloads []WorkloadSpec `yaml:"workloads"`
}

// WorkloadSpec declares one workload.
type WorkloadSpec struct {
	Name         string            `yaml:"name"`
	Kind         string            `yaml:"kind"`
	Params       map[string]string `yaml:"params,omitempty"`
	NodeSelector map[string]string `yaml:"nodeSelector,omitempty"`
	// SpreadBy spreads workloads of the same kind over the values of this
	// node label ("node": over nodes).
	SpreadBy string `yaml:"spreadBy,omitempty"`
}

// Encode returns the spec as YAML, the form LoadSpec reads.
func (s *Spec) Encode() ([]byte, error) {
	b, err := yaml.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode pipeline spec: %w", err)
	}
	return b, nil
}

// LoadSpec reads and validates a spec file.
func LoadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline spec: %w", err)
	}
	s, err := ParseSpec(b)
	if err != nil {
		return nil, fmt.Errorf("pipeline spec %s: %w", path, err)
	}
	return s, nil
}

// ParseSpec parses YAML strictly (unknown keys are errors) and validates it.
func ParseSpec(b []byte) (*Spec, error) {
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks names, kinds and duplicates; errors name the field.
func (s *Spec) Validate() error {
	var errs []error
	if _, err := NewKeys(s.Site); err != nil {
		errs = append(errs, fmt.Errorf("site: %w", err))
	}
	seen := map[string]bool{}
	for i, w := range s.Workloads {
		field := fmt.Sprintf("workloads[%d]", i)
		if !ValidName(w.Name) {
			errs = append(errs, fmt.Errorf("%s.name %q: must match %s", field, w.Name, nameRE))
		}
		if seen[w.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q: declared twice", field, w.Name))
		}
		seen[w.Name] = true
		known := false
		for _, k := range pipeline.Kinds() {
			known = known || k == w.Kind
		}
		if !known {
			errs = append(errs, fmt.Errorf("%s.kind %q: must be one of %v", field, w.Kind, pipeline.Kinds()))
		}
		if w.SpreadBy != "" && !labelKeyRE.MatchString(w.SpreadBy) {
			errs = append(errs, fmt.Errorf("%s.spreadBy %q: must be a label key (or \"node\")", field, w.SpreadBy))
		}
		for k := range w.NodeSelector {
			if !labelKeyRE.MatchString(k) {
				errs = append(errs, fmt.Errorf("%s.nodeSelector key %q: must match %s", field, k, labelKeyRE))
			}
		}
		if w.Kind == pipeline.KindCapture && (w.Params[pipeline.ParamCamera] == "" || w.Params[pipeline.ParamSource] == "") {
			errs = append(errs, fmt.Errorf("%s.params: a capture workload needs camera and source", field))
		}
	}
	return errors.Join(errs...)
}

// Proto returns the workloads as API messages, sorted by name.
func (s *Spec) Proto() []*cefiotv1.Workload {
	out := make([]*cefiotv1.Workload, 0, len(s.Workloads))
	for _, w := range s.Workloads {
		out = append(out, &cefiotv1.Workload{
			Name: w.Name, Kind: w.Kind, Params: w.Params, NodeSelector: w.NodeSelector, SpreadBy: w.SpreadBy,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}
