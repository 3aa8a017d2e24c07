package check

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CloudNativePG's Cluster (postgresql.cnpg.io/v1) as a minimal local type:
// only the fields the cloudnative-pg component sets, with CloudNativePG's
// JSON names (its API reference, cloudnative-pg.io/documentation). Decoded
// strictly like every other object, so a misspelt or unknown field fails;
// a field CloudNativePG has but this type lacks fails too, until it is
// added here. Importing the operator's own module would pull its whole
// dependency tree for one struct.
var cnpgGroupVersion = schema.GroupVersion{Group: "postgresql.cnpg.io", Version: "v1"}

// CNPGCluster is a CloudNativePG Cluster.
type CNPGCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CNPGClusterSpec `json:"spec"`
}

// CNPGClusterSpec holds the Cluster fields cefiot uses.
type CNPGClusterSpec struct {
	Instances             int32                       `json:"instances"`
	ImageName             string                      `json:"imageName,omitempty"`
	PrimaryUpdateStrategy string                      `json:"primaryUpdateStrategy,omitempty"`
	EnableSuperuserAccess *bool                       `json:"enableSuperuserAccess,omitempty"`
	Bootstrap             *CNPGBootstrap              `json:"bootstrap,omitempty"`
	Certificates          *CNPGCertificates           `json:"certificates,omitempty"`
	PostgreSQL            CNPGPostgresConfiguration   `json:"postgresql,omitempty"`
	Storage               CNPGStorage                 `json:"storage"`
	Resources             corev1.ResourceRequirements `json:"resources,omitempty"`
	Affinity              *CNPGAffinity               `json:"affinity,omitempty"`
}

// CNPGBootstrap is spec.bootstrap (initdb only).
type CNPGBootstrap struct {
	InitDB *CNPGInitDB `json:"initdb,omitempty"`
}

// CNPGInitDB is spec.bootstrap.initdb.
type CNPGInitDB struct {
	Database string                `json:"database,omitempty"`
	Owner    string                `json:"owner,omitempty"`
	Secret   *CNPGLocalObjectRefer `json:"secret,omitempty"`
}

// CNPGLocalObjectRefer names an object of the Cluster's namespace.
type CNPGLocalObjectRefer struct {
	Name string `json:"name"`
}

// CNPGCertificates is spec.certificates.
type CNPGCertificates struct {
	ServerCASecret       string `json:"serverCASecret,omitempty"`
	ServerTLSSecret      string `json:"serverTLSSecret,omitempty"`
	ReplicationTLSSecret string `json:"replicationTLSSecret,omitempty"`
	ClientCASecret       string `json:"clientCASecret,omitempty"`
}

// CNPGPostgresConfiguration is spec.postgresql.
type CNPGPostgresConfiguration struct {
	Parameters map[string]string `json:"parameters,omitempty"`
	PgHBA      []string          `json:"pg_hba,omitempty"`
}

// CNPGStorage is spec.storage.
type CNPGStorage struct {
	Size         *resource.Quantity `json:"size,omitempty"`
	StorageClass *string            `json:"storageClass,omitempty"`
}

// CNPGAffinity is spec.affinity (the operator's own shape, not a pod's).
type CNPGAffinity struct {
	EnablePodAntiAffinity *bool  `json:"enablePodAntiAffinity,omitempty"`
	TopologyKey           string `json:"topologyKey,omitempty"`
	PodAntiAffinityType   string `json:"podAntiAffinityType,omitempty"`
}

// DeepCopyObject makes CNPGCluster a runtime.Object. A JSON round trip of
// a type made only of JSON-tagged fields cannot fail.
func (c *CNPGCluster) DeepCopyObject() runtime.Object {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("copy CloudNativePG Cluster %s: %v", c.Name, err))
	}
	out := &CNPGCluster{}
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("copy CloudNativePG Cluster %s: %v", c.Name, err))
	}
	return out
}

// addCNPGToScheme registers the Cluster kind.
func addCNPGToScheme(s *runtime.Scheme) error {
	s.AddKnownTypeWithName(cnpgGroupVersion.WithKind("Cluster"), &CNPGCluster{})
	metav1.AddToGroupVersion(s, cnpgGroupVersion)
	return nil
}
