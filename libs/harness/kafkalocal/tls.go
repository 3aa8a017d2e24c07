package kafkalocal

import (
	"github.com/cefiot/cefiot/libs/kafkaconf"

	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cefiot/cefiot/libs/kafkaacl"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/tlsx"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// keystorePath and truststorePath are a node's PEM key store (key and
// certificate) and trust store (every trust bundle), written on each start.
func keystorePath(n Node) string   { return filepath.Join(n.Dir, "tls", "keystore.pem") }
func truststorePath(n Node) string { return filepath.Join(n.Dir, "tls", "truststore.pem") }

// tlsProperties are the SSL and authorizer settings of node n.
func tlsProperties(n Node, superUser string) []property {
	return append([]property{
		{"ssl.keystore.type", "PEM"},
		{"ssl.keystore.location", keystorePath(n)},
		{"ssl.truststore.type", "PEM"},
		{"ssl.truststore.location", truststorePath(n)},
		{"super.users", superUser},
	}, fromConf(kafkaconf.Security())...)
}

// writeStores writes n's key store and trust store from the TLS files.
func writeStores(t *TLS, n Node) error {
	if err := os.MkdirAll(filepath.Join(n.Dir, "tls"), 0o700); err != nil {
		return err
	}
	cert, err := os.ReadFile(t.Cert)
	if err != nil {
		return fmt.Errorf("broker certificate: %w", err)
	}
	key, err := os.ReadFile(t.Key)
	if err != nil {
		return fmt.Errorf("broker key: %w", err)
	}
	if err := os.WriteFile(keystorePath(n), append(append(key, '\n'), cert...), 0o600); err != nil {
		return err
	}
	var trust []byte
	for _, b := range t.TrustBundles {
		pemBytes, err := os.ReadFile(b)
		if err != nil {
			return fmt.Errorf("trust bundle: %w", err)
		}
		trust = append(append(trust, pemBytes...), '\n')
	}
	return os.WriteFile(truststorePath(n), trust, 0o644)
}

// superUserOf is the Kafka principal of the brokers' certificate: Kafka
// names an mTLS client by its subject in RFC 2253 form.
func superUserOf(t *TLS) (string, error) {
	b, err := os.ReadFile(t.Cert)
	if err != nil {
		return "", fmt.Errorf("broker certificate: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", errors.New("broker certificate: no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("broker certificate: %w", err)
	}
	return "User:" + c.Subject.String(), nil
}

// Conn is how the cluster's own tools reach it: as the brokers' identity,
// the super user (plaintext without TLS).
func (c *Cluster) Conn() kafkax.Conn { return c.connTo(c.BootstrapServers()) }

func (c *Cluster) connTo(bootstrap string) kafkax.Conn {
	if c.cfg.TLS == nil {
		return kafkax.Conn{Bootstrap: bootstrap}
	}
	return kafkax.Conn{Bootstrap: bootstrap, TLS: &tlsx.Files{Cert: c.cfg.TLS.Cert, Key: c.cfg.TLS.Key, CA: c.cfg.TLS.CA}}
}

// Grant creates ACLs, as the cluster's super user.
func (c *Cluster) Grant(ctx context.Context, grants []kafkaacl.Grant) error {
	return c.asSuperUser("grant", func(a *kafka.AdminClient) error { return kafkaacl.Apply(ctx, a, grants) })
}

// Revoke deletes ACLs, as the cluster's super user.
func (c *Cluster) Revoke(ctx context.Context, grants []kafkaacl.Grant) error {
	return c.asSuperUser("revoke", func(a *kafka.AdminClient) error { return kafkaacl.Revoke(ctx, a, grants) })
}

// RevokeNode locks one board of site out of the cluster (kafkaacl.RevokeNode).
func (c *Cluster) RevokeNode(ctx context.Context, site, node string) error {
	return c.asSuperUser("revoke board", func(a *kafka.AdminClient) error { return kafkaacl.RevokeNode(ctx, a, site, node) })
}

// RevokeSite locks every credential of site out of the cluster
// (kafkaacl.RevokeSite).
func (c *Cluster) RevokeSite(ctx context.Context, site string) error {
	return c.asSuperUser("revoke site", func(a *kafka.AdminClient) error {
		_, err := kafkaacl.RevokeSite(ctx, a, site)
		return err
	})
}

func (c *Cluster) asSuperUser(what string, f func(*kafka.AdminClient) error) error {
	adm, err := newAdmin(c.Conn(), c.logger)
	if err != nil {
		return fmt.Errorf("kafkalocal: %s: %w", what, err)
	}
	defer adm.Close()
	if err := f(adm.AdminClient); err != nil {
		return fmt.Errorf("kafkalocal: cluster %s: %s: %w", c.cfg.Name, what, err)
	}
	return nil
}

// ReloadTLS makes every node take the TLS files again (a rotated key pair,
// a changed trust bundle) without a restart: it rewrites each node's key
// and trust stores and sets their locations again as per-broker dynamic
// configs, which makes Kafka reread the files for new connections (its
// SslFactory reloads a store whose file changed; connections already open
// keep their session). As a deployment would run kafka-configs.sh.
func (c *Cluster) ReloadTLS(ctx context.Context) error {
	if c.cfg.TLS == nil {
		return nil
	}
	return c.asSuperUser("reload TLS", func(a *kafka.AdminClient) error {
		var resources []kafka.ConfigResource
		for _, n := range c.nodes {
			if err := writeStores(c.cfg.TLS, n.info); err != nil {
				return fmt.Errorf("node %d: %w", n.info.ID, err)
			}
			var entries []kafka.ConfigEntry
			for _, listener := range []string{"client", "controller"} {
				prefix := "listener.name." + listener + "."
				entries = append(entries,
					kafka.ConfigEntry{Name: prefix + "ssl.keystore.location", Value: keystorePath(n.info), IncrementalOperation: kafka.AlterConfigOpTypeSet},
					kafka.ConfigEntry{Name: prefix + "ssl.truststore.location", Value: truststorePath(n.info), IncrementalOperation: kafka.AlterConfigOpTypeSet},
				)
			}
			resources = append(resources, kafka.ConfigResource{Type: kafka.ResourceBroker, Name: strconv.Itoa(n.info.ID), Config: entries})
		}
		res, err := a.IncrementalAlterConfigs(ctx, resources)
		if err != nil {
			return err
		}
		var errs []error
		for _, r := range res {
			if r.Error.Code() != kafka.ErrNoError {
				errs = append(errs, fmt.Errorf("broker %s: %w", r.Name, r.Error))
			}
		}
		return errors.Join(errs...)
	})
}

// KeystorePath is the PEM key store (the brokers' key and certificate) of
// the first node, for Java clients that act as the super user.
func (c *Cluster) KeystorePath() string { return keystorePath(c.nodes[0].info) }
