package enrich

import (
	"fmt"
	"strconv"
	"strings"
)

// WorkloadParams are the settings an enrich workload can carry in its
// params (pipeline spec), overriding the process flags. Unknown params are
// ignored, so other components (such as the scheduler moving enrich between
// sites) can add their own. To add one: a field here, a case in
// ParseWorkloadParams, and its use in the workload.
type WorkloadParams struct {
	// ThumbnailWidth overrides -thumbnail-width ("thumbnail-width").
	ThumbnailWidth int
	// InputTopic and OutputTopic override -input-topic and -output-topic
	// ("input-topic", "output-topic"): an enrich moved to the cloud reads
	// the forwarded copy of the edge's input topic.
	InputTopic, OutputTopic string
	// OriginSite is the site whose frames these are ("origin-site";
	// default: the worker's site).
	OriginSite string
	// Handoff is the cross-site handoff this workload takes part in
	// ("handoff-id" with "handoff-to" or "handoff-from"); see handoff.go.
	Handoff HandoffParams
}

// ParseWorkloadParams reads the params enrich knows, starting from the
// process defaults. Errors name the param.
func ParseWorkloadParams(params map[string]string, defaults WorkloadParams) (WorkloadParams, error) {
	p := defaults
	for key, v := range params {
		switch key {
		case "thumbnail-width":
			n, err := strconv.Atoi(v)
			if err != nil || n < 16 || n > 1024 {
				return p, fmt.Errorf("param thumbnail-width %q: must be 16..1024", v)
			}
			p.ThumbnailWidth = n
		case "input-topic", "output-topic", "origin-site":
			if v == "" || strings.ContainsAny(v, " ,") {
				return p, fmt.Errorf("param %s %q: must be a non-empty name without spaces or commas", key, v)
			}
			switch key {
			case "input-topic":
				p.InputTopic = v
			case "output-topic":
				p.OutputTopic = v
			default:
				p.OriginSite = v
			}
		}
	}
	p.Handoff = handoffParams(params)
	if p.Handoff.ID != "" && (p.Handoff.To == "") == (p.Handoff.From == "") {
		return p, fmt.Errorf("param handoff-id %q: needs exactly one of handoff-to and handoff-from", p.Handoff.ID)
	}
	if p.InputTopic == p.OutputTopic && p.InputTopic != "" {
		return p, fmt.Errorf("param output-topic %q: must differ from input-topic", p.OutputTopic)
	}
	return p, nil
}
