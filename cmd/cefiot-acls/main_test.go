package main

import (
	"context"
	"strings"
	"testing"
)

func TestPrintsTheSitesGrants(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"-cluster", "cloud", "-site", "cloud", "-sites", "edge,edge-2"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"User:CN=worker/bridge,OU=edge,O=cefiot WRITE TOPIC*=edge-edge.",
		"User:CN=worker/bridge,OU=edge-2,O=cefiot WRITE TRANSACTIONAL_ID*=cefiot-bridge.edge-2.",
		"User:CN=worker/sink,OU=cloud,O=cefiot READ TOPIC*=edge-",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	// No grant of one site names another's prefix.
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "OU=edge,") && strings.Contains(line, "edge-2") {
			t.Errorf("site edge's grant names site edge-2's names: %s", line)
		}
	}
}

func TestRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-cluster", "middle", "-site", "edge"}, `"cluster"`},
		{[]string{"-cluster", "cloud", "-site", "cloud", "-revoke"}, `"sites"`},
		{[]string{"-cluster", "edge", "-site", "a.b"}, `"site"`},
		{[]string{"-cluster", "edge", "-site", "edge", "-apply"}, `"bootstrap"`},
		{[]string{"-cluster", "cloud", "-site", "cloud", "-sites", "edge,edge-2", "-nodes", "board-1"}, `"nodes"`},
		{[]string{"-cluster", "edge", "-site", "edge", "-sites", "edge", "-revoke"}, `"cluster"`},
	} {
		err := run(context.Background(), tc.args, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}

// TestEachBoardItsOwnCloudCredential: with -nodes the site's cloud rights go
// to each board's own credential, and none to the site's shared bridge
// identity (which every board holds, so it could not be revoked alone).
func TestEachBoardItsOwnCloudCredential(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"-cluster", "cloud", "-site", "cloud", "-sites", "edge", "-nodes", "board-1,board-2"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"User:CN=node/board-1,OU=edge,O=cefiot WRITE TOPIC*=edge-edge.",
		"User:CN=node/board-2,OU=edge,O=cefiot WRITE TRANSACTIONAL_ID*=cefiot-bridge.edge.",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "CN=worker/bridge,OU=edge,") {
		t.Errorf("the site's shared bridge identity has cloud rights:\n%s", out.String())
	}
}
