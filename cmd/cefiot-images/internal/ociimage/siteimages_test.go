package ociimage

import "testing"

// TestQualifiedNamesAnImageAsTheRuntimeLooksItUp: an image imported under
// apache/kafka:4.1.1 would not be found by a kubelet asking for it, which
// the runtime looks up as docker.io/apache/kafka:4.1.1.
func TestQualifiedNamesAnImageAsTheRuntimeLooksItUp(t *testing.T) {
	for ref, want := range map[string]string{
		"apache/kafka:4.1.1":                  "docker.io/apache/kafka:4.1.1",
		"busybox:1":                           "docker.io/library/busybox:1",
		"gcr.io/etcd-development/etcd:v3.7.3": "gcr.io/etcd-development/etcd:v3.7.3",
		"localhost/x:1":                       "localhost/x:1",
		"registry:5000/x:1":                   "registry:5000/x:1",
	} {
		if got := qualified(ref); got != want {
			t.Errorf("qualified(%q) = %q, want %q", ref, got, want)
		}
	}
}
