package selection

import (
	"strings"
	"testing"
)

func TestListAndRegex(t *testing.T) {
	l, err := FromList(" b, a ,a,")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.String(); got != "a,b" {
		t.Errorf("list = %q", got)
	}
	if !l.Match("a") || l.Match("c") {
		t.Error("list matching wrong")
	}
	r, err := FromRegex(`frames\..*`)
	if err != nil {
		t.Fatal(err)
	}
	for topic, want := range map[string]bool{"frames.raw": true, "frames.enriched": true, "xframes.raw": false, "_frames.x": false, "frames": false} {
		if r.Match(topic) != want {
			t.Errorf("regex match %q = %v, want %v", topic, !want, want)
		}
	}
	if _, err := FromRegex("(("); err == nil {
		t.Error("bad regex accepted")
	}
	if _, err := FromList(" , "); err == nil {
		t.Error("empty list accepted")
	}
	if _, err := FromList("a b"); err == nil {
		t.Error("bad topic name accepted")
	}
}

func TestResolvePrecedence(t *testing.T) {
	s, err := Resolve(map[string]string{ParamTopics: "x,y"}, "frames.enriched", "")
	if err != nil || s.String() != "x,y" {
		t.Fatalf("params topics: %v %v", s, err)
	}
	s, err = Resolve(map[string]string{ParamTopicRegex: "t\\..*"}, "frames.enriched", "")
	if err != nil || !s.Match("t.1") || s.Match("frames.enriched") {
		t.Fatalf("params regex: %v %v", s, err)
	}
	s, err = Resolve(nil, "frames.enriched", "")
	if err != nil || s.String() != "frames.enriched" {
		t.Fatalf("flags: %v %v", s, err)
	}
	s, err = Resolve(nil, "frames.enriched", "a.*")
	if err != nil || !s.Match("abc") {
		t.Fatalf("flag regex: %v %v", s, err)
	}
	if _, err := Resolve(map[string]string{ParamTopics: "x", ParamTopicRegex: "y"}, "", ""); err == nil {
		t.Error("both params accepted")
	}
	if _, err := Resolve(map[string]string{ParamTopicRegex: "(("}, "", ""); err == nil {
		t.Error("bad param regex accepted")
	}
}

// TestEdgePrefixSelectsOnlyTheSitesTopics: under a prefix, names and
// expressions apply to what follows it, other sites' topics are never
// matched, and the cloud name drops the prefix.
func TestEdgePrefixSelectsOnlyTheSitesTopics(t *testing.T) {
	list, err := FromList("frames.enriched")
	if err != nil {
		t.Fatal(err)
	}
	re, err := FromRegex(`frames\..*`)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Selection{list.WithEdgePrefix("site-a."), re.WithEdgePrefix("site-a.")} {
		for topic, want := range map[string]bool{
			"site-a.frames.enriched": true,
			"site-b.frames.enriched": false,
			"frames.enriched":        false,
			"site-a.":                false,
			"site-a._internal":       false,
		} {
			if got := s.Match(topic); got != want {
				t.Errorf("%s: Match(%q) = %v, want %v", s, topic, got, want)
			}
		}
		if got := s.CloudTopic("site-a", "site-a.frames.enriched"); got != "edge-site-a.frames.enriched" {
			t.Errorf("%s: CloudTopic = %q", s, got)
		}
	}
	if got := list.CloudTopic("edge", "frames.enriched"); got != "edge-edge.frames.enriched" {
		t.Errorf("without a prefix: CloudTopic = %q", got)
	}
	for _, bad := range []string{"_site", "a b", strings.Repeat("p", 101)} {
		if ValidEdgePrefix(bad) == nil {
			t.Errorf("ValidEdgePrefix(%q) accepted", bad)
		}
	}
	if err := ValidEdgePrefix(""); err != nil {
		t.Errorf("no prefix refused: %v", err)
	}
}
