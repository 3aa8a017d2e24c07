package kafkaacl

import (
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/pki"
)

// TestBoardsHoldTheirSitesCloudRights: with boards, each board's own
// credential gets the site's cloud rights and the shared bridge identity
// none; without, the shared identity gets them.
func TestBoardsHoldTheirSitesCloudRights(t *testing.T) {
	principals := func(gs []Grant) map[string]int {
		out := map[string]int{}
		for _, g := range gs {
			if g.Deny || !strings.HasPrefix(g.Name, "edge-edge.") && !strings.HasPrefix(g.Name, "cefiot-bridge.edge.") {
				t.Errorf("grant outside site edge's names: %s", g)
			}
			out[g.Principal]++
		}
		return out
	}
	boards := principals(CloudSite("edge", "board-1", "board-2"))
	shared := principals(CloudSite("edge"))
	if len(boards) != 2 || boards["User:CN=node/board-1,OU=edge,O=cefiot"] == 0 || boards["User:CN=node/board-2,OU=edge,O=cefiot"] == 0 {
		t.Errorf("board grants go to %v", boards)
	}
	if len(shared) != 1 || shared["User:CN=worker/bridge,OU=edge,O=cefiot"] == 0 {
		t.Errorf("shared grants go to %v", shared)
	}
}

// TestDenyAllRefusesEveryResource: a revoked board is denied every topic,
// group, transactional id and the cluster, by name "*".
func TestDenyAllRefusesEveryResource(t *testing.T) {
	kinds := map[kafka.ResourceType]bool{}
	for _, g := range DenyAll(pki.Identity{Site: "edge", Component: "node/board-1"}) {
		b := g.Binding()
		if b.PermissionType != kafka.ACLPermissionTypeDeny || b.Operation != kafka.ACLOperationAll || b.Principal != "User:CN=node/board-1,OU=edge,O=cefiot" {
			t.Errorf("not a deny of everything: %s", g)
		}
		kinds[b.Type] = true
	}
	for _, k := range []kafka.ResourceType{kafka.ResourceTopic, kafka.ResourceGroup, resourceTransactionalID, kafka.ResourceBroker} {
		if !kinds[k] {
			t.Errorf("no deny on %s", k)
		}
	}
}

// TestSiteFiltersMatchOnlyTheSitesNames: revoking site edge deletes grants
// on edge's prefixes whoever holds them, never on the cloud-wide "edge-"
// prefix the sink reads by, nor on another site's.
func TestSiteFiltersMatchOnlyTheSitesNames(t *testing.T) {
	for _, f := range SiteFilters("edge") {
		if f.Principal != "" || f.ResourcePatternType != kafka.ResourcePatternTypePrefixed {
			t.Errorf("filter %+v: want any principal, the exact prefix", f)
		}
		if f.Name != "edge-edge." && f.Name != "cefiot-bridge.edge." {
			t.Errorf("filter on %q", f.Name)
		}
	}
}

// TestSharedEdgeBridgeReadsOnlyUnderItsPrefix: in an edge cluster that
// sites share, a site's bridge reads the topics under its own prefix (and
// writes only the audit trail), as that site's bridge and no one else.
func TestSharedEdgeBridgeReadsOnlyUnderItsPrefix(t *testing.T) {
	for _, g := range SharedEdgeBridge("site-a", "site-a.") {
		if g.Principal != "User:CN=worker/bridge,OU=site-a,O=cefiot" {
			t.Errorf("grant to %s", g.Principal)
		}
		switch {
		case g.Resource == kafka.ResourceTopic && g.Name == "site-a." && g.Prefixed:
			if g.Operation != kafka.ACLOperationRead && g.Operation != kafka.ACLOperationDescribeConfigs {
				t.Errorf("site topics: %s", g)
			}
		case g.Resource == kafka.ResourceTopic && !g.Prefixed && strings.Contains(g.Name, "audit"):
		case g.Resource == kafka.ResourceGroup && g.Name == "cefiot-bridge.site-a." && g.Prefixed:
		default:
			t.Errorf("grant outside site-a's names: %s", g)
		}
	}
}
