package ociimage

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with continuations joined.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, text string) []instruction {
	t.Helper()
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSpace(strings.TrimSuffix(trimmed, "\\")) + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

var pinnedRE = regexp.MustCompile(`^[a-z0-9./-]+(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$`)

// TestDockerfiles holds each service's Dockerfile to what the engine-less
// images do: multi-stage, every base image pinned, the final stage running
// the same entrypoint as the same non-root user.
func TestDockerfiles(t *testing.T) {
	for _, s := range Services {
		t.Run(s.Name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("../../../../services", s.Name, "Dockerfile"))
			if err != nil {
				t.Fatal(err)
			}
			ins := parseDockerfile(t, string(b))
			var froms []string
			var user, entrypoint string
			var builds bool
			for _, in := range ins {
				switch in.cmd {
				case "FROM":
					image := strings.Fields(in.args)[0]
					froms = append(froms, image)
					user, entrypoint = "", "" // per stage: the last stage's count
					if !pinnedRE.MatchString(image) || (!strings.Contains(image, ":") && !strings.Contains(image, "@")) || strings.HasSuffix(image, ":latest") {
						t.Errorf("FROM %s: pin the base image to a version tag or digest", image)
					}
				case "USER":
					user = in.args
				case "ENTRYPOINT":
					var argv []string
					if err := json.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) != 1 {
						t.Errorf("ENTRYPOINT %s: want the exec form with the binary alone", in.args)
					} else {
						entrypoint = argv[0]
					}
				case "RUN":
					if strings.Contains(in.args, "go build") && strings.Contains(in.args, "-o /out/"+s.Name) {
						builds = true
					}
				}
			}
			if len(froms) < 2 {
				t.Errorf("want a multi-stage build, found %d stages", len(froms))
			}
			if !builds {
				t.Errorf("no stage runs go build -o /out/%s", s.Name)
			}
			if entrypoint != Entrypoint(s.Name) {
				t.Errorf("final stage ENTRYPOINT %q, want %q (as the engine-less image)", entrypoint, Entrypoint(s.Name))
			}
			uid, _, _ := strings.Cut(user, ":")
			if n, err := strconv.Atoi(uid); err != nil || n != UID {
				t.Errorf("final stage USER %q, want %d:%d (numeric, non-root, as the engine-less image)", user, UID, UID)
			}
		})
	}
}

func TestParseDockerfileJoinsContinuations(t *testing.T) {
	ins := parseDockerfile(t, "# c\nFROM a:1 AS b\nRUN x \\\n    y\n\nUSER 1:1\n")
	if len(ins) != 3 || ins[1].cmd != "RUN" || ins[1].args != "x y" || ins[2].args != "1:1" {
		t.Fatalf("got %+v", ins)
	}
}
