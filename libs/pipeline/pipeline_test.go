package pipeline

import (
	"regexp"
	"testing"
)

func TestCloudNamesFollowOneRule(t *testing.T) {
	if got := CloudTopic("door", TopicFramesEnriched); got != "edge-door.frames.enriched" {
		t.Fatalf("CloudTopic = %q", got)
	}
	if CheckpointTopic("door") != "edge-door._cefiot.checkpoints" || GapTopic("door") != "edge-door._cefiot.gaps" {
		t.Fatalf("bridge topics %q %q", CheckpointTopic("door"), GapTopic("door"))
	}
	re := regexp.MustCompile(CloudTopicPattern(TopicFramesEnriched))
	for topic, want := range map[string]bool{
		CloudTopic("door", TopicFramesEnriched):       true,
		CloudTopic("yard-2", TopicFramesEnriched):     true,
		CloudTopic("door", TopicFramesRaw):            false,
		CheckpointTopic("door"):                       false,
		"edge-door.framesXenriched":                   false, // the dot is literal
		TopicFramesEnriched:                           false,
		CloudTopic("door", TopicFramesEnriched) + "x": false,
	} {
		if re.MatchString(topic) != want {
			t.Errorf("pattern %s on %q: got %v, want %v", re, topic, !want, want)
		}
	}
}
