// Package selection decides which edge topics a bridge forwards and what
// they are called in the cloud cluster.
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
)

// Selection is a set of edge topics.
type Selection struct {
	names []string
	re    *regexp.Regexp
	expr  string
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

// Match reports whether the edge topic is selected.
func (s Selection) Match(topic string) bool {
	if s.re != nil {
		return !strings.HasPrefix(topic, "_") && s.re.MatchString(topic)
	}
	_, found := slices.BinarySearch(s.names, topic)
	return found
}

// Names returns the listed topics (nil for a regular expression).
func (s Selection) Names() []string { return slices.Clone(s.names) }

// String describes the selection for status and logs.
func (s Selection) String() string {
	if s.re != nil {
		return "regex:" + s.expr
	}
	return strings.Join(s.names, ",")
}

var topicRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

// ValidTopic checks a Kafka topic name (leaving room for the cloud prefix).
func ValidTopic(t string) error {
	if t == "." || t == ".." || !topicRE.MatchString(t) {
		return fmt.Errorf("topic %q: want 1..200 of letters, digits, '.', '_' or '-'", t)
	}
	return nil
}
