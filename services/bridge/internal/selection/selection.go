// Package selection decides which edge topics a bridge forwards and what
// they are called in the cloud cluster.
//
// A site's topics are those of its own edge cluster, or those under the
// site's prefix in an edge cluster that several sites share (WithEdgePrefix).
//
// A selection is either a list of topic names or a regular expression that
// must match a whole topic name. Internal topics (names starting with "_")
// are never matched by a regular expression; list them by name to forward
// them.
package selection

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cefiot/cefiot/libs/pipeline"
)

// Selection is a set of edge topics.
type Selection struct {
	names []string
	re    *regexp.Regexp
	expr  string
	// prefix is where the site's topics live in an edge cluster that
	// several sites share: only topics under it are considered, names and
	// expressions apply to what follows it, and it is dropped in the
	// cloud (site-a.frames.enriched at the edge is edge-site-a.frames.enriched
	// in the cloud, as frames.enriched is when the cluster is the site's own).
	prefix string
}

// Params keys of the bridge workload that override the process flags.
const (
	ParamTopics     = "topics"
	ParamTopicRegex = "topic-regex"
)

// FromList selects the comma-separated topics in list.
func FromList(list string) (Selection, error) {
	var names []string
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if err := ValidTopic(t); err != nil {
			return Selection{}, err
		}
		if !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return Selection{}, errors.New("must name at least one topic")
	}
	slices.Sort(names)
	return Selection{names: names}, nil
}

// FromRegex selects the topics whose whole name matches expr (RE2 syntax).
func FromRegex(expr string) (Selection, error) {
	if strings.TrimSpace(expr) == "" {
		return Selection{}, errors.New("empty regular expression")
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return Selection{}, fmt.Errorf("bad regular expression: %w", err)
	}
	return Selection{re: re, expr: expr}, nil
}

// Resolve picks the selection of a workload: its params topic-regex or
// topics when set, else the process defaults (regex first, then list).
func Resolve(params map[string]string, flagTopics, flagRegex string) (Selection, error) {
	pr, pt := strings.TrimSpace(params[ParamTopicRegex]), strings.TrimSpace(params[ParamTopics])
	switch {
	case pr != "" && pt != "":
		return Selection{}, fmt.Errorf("workload params %q and %q are both set: use one", ParamTopicRegex, ParamTopics)
	case pr != "":
		s, err := FromRegex(pr)
		if err != nil {
			return Selection{}, fmt.Errorf("workload param %q = %q: %w", ParamTopicRegex, pr, err)
		}
		return s, nil
	case pt != "":
		s, err := FromList(pt)
		if err != nil {
			return Selection{}, fmt.Errorf("workload param %q = %q: %w", ParamTopics, pt, err)
		}
		return s, nil
	case strings.TrimSpace(flagRegex) != "":
		return FromRegex(flagRegex)
	default:
		return FromList(flagTopics)
	}
}

// ValidEdgePrefix checks an edge topic prefix: empty, or the start of a
// topic name that leaves room for the names under it.
func ValidEdgePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > 100 || strings.HasPrefix(prefix, "_") || !topicRE.MatchString(prefix) {
		return fmt.Errorf("prefix %q: want 1..100 of letters, digits, '.', '_' or '-', not starting with '_'", prefix)
	}
	return nil
}

// WithEdgePrefix returns the selection applied under prefix (checked by
// ValidEdgePrefix) of a shared edge cluster.
func (s Selection) WithEdgePrefix(prefix string) Selection {
	s.prefix = prefix
	return s
}

// Match reports whether the edge topic is selected.
func (s Selection) Match(topic string) bool {
	name, ok := strings.CutPrefix(topic, s.prefix)
	if !ok || name == "" {
		return false
	}
	if s.re != nil {
		return !strings.HasPrefix(name, "_") && s.re.MatchString(name)
	}
	_, found := slices.BinarySearch(s.names, name)
	return found
}

// CloudTopic is the name in the cloud cluster of a selected edge topic of
// site.
func (s Selection) CloudTopic(site, topic string) string {
	return pipeline.CloudTopic(site, strings.TrimPrefix(topic, s.prefix))
}

// Names returns the listed topics (nil for a regular expression).
func (s Selection) Names() []string { return slices.Clone(s.names) }

// String describes the selection for status and logs.
func (s Selection) String() string {
	under := ""
	if s.prefix != "" {
		under = " under " + s.prefix
	}
	if s.re != nil {
		return "regex:" + s.expr + under
	}
	return strings.Join(s.names, ",") + under
}

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

// ValidTopic checks a Kafka topic name (leaving room for the cloud prefix).
func ValidTopic(t string) error {
	if t == "." || t == ".." || !topicRE.MatchString(t) {
		return fmt.Errorf("topic %q: want 1..200 of letters, digits, '.', '_' or '-'", t)
	}
	return nil
}
