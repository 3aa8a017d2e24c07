package selection

import "testing"

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
