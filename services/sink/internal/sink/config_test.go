package sink

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

func TestConfigStoreAndRetention(t *testing.T) {
	ret := filepath.Join(t.TempDir(), "retention.yaml")
	if err := os.WriteFile(ret, []byte("cameras:\n  door: {max_age: 72h, max_bytes: 5GiB}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig([]string{"-store-backend", "s3", "-s3-endpoint", "127.0.0.1:9000", "-s3-bucket", "frames",
		"-s3-access-key", "k", "-retention-max-age", "720h", "-insecure-plaintext", "-retention-max-bytes", "20GiB", "-retention-file", ret},
		func(k string) (string, bool) {
			if k == "CEFIOT_S3_SECRET_KEY" {
				return "s", true
			}
			return "", false
		})
	if err != nil {
		t.Fatal(err)
	}
	if c.S3.SecretKey != "s" || c.Retention.Default.MaxAge != 720*time.Hour || c.Retention.Default.MaxBytes != 20<<30 ||
		c.Retention.For("door").MaxBytes != 5<<30 || c.Retention.For("other").MaxAge != 720*time.Hour {
		t.Fatalf("config %+v", c)
	}
	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"-store-backend", "tape"}, `"store-backend"`},
		{[]string{"-store-backend", "s3"}, `"s3-endpoint"`},
		{[]string{"-store-backend", "s3", "-s3-endpoint", "http://x:1", "-s3-bucket", "b", "-s3-access-key", "k", "-s3-secret-key", "s"}, `"s3-endpoint"`},
		{[]string{"-retention-max-bytes", "lots"}, `"retention-max-bytes"`},
		{[]string{"-max-frame-bytes", "0"}, `"max-frame-bytes"`},
		{[]string{"-retention-file", "/nonexistent.yaml"}, `"retention-file"`},
		{[]string{"-index", "sqlite"}, `"index"`},
		{[]string{"-store-concurrency", "0"}, `"store-concurrency"`},
		{[]string{"-index", "postgres"}, `"index-dsn"`},
		{[]string{"-index", "postgres", "-index-dsn", "postgres://sink@db/cefiot?sslmode=require"}, `"index-dsn"`},
		{[]string{"-index", "postgres", "-index-dsn", "postgres://sink@db/cefiot?sslmode=verify-full", "-index-schema", "Robert'); DROP"}, `"index-schema"`},
	} {
		if _, err := ParseConfig(tc.args, noEnv); err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%v: err = %v, want one naming %s", tc.args, err, tc.key)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("cameras:\n  door: {max_age: soon}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig([]string{"-retention-file", bad}, noEnv); err == nil || !strings.Contains(err.Error(), "cameras.door.max_age") {
		t.Errorf("bad retention file: %v", err)
	}
}

// TestConfigSharedIndex: the PostgreSQL index's connection string comes
// from the environment (it holds a password) and is never echoed in an
// error.
func TestConfigSharedIndex(t *testing.T) {
	dsn := "postgres://sink:s3cret@db:5432/cefiot?sslmode=verify-full&sslrootcert=/ca.crt"
	c, err := ParseConfig([]string{"-index", "postgres", "-insecure-plaintext"}, func(k string) (string, bool) {
		return dsn, k == "CEFIOT_INDEX_DSN"
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Index != "postgres" || c.IndexPostgres.DSN != dsn || c.IndexPostgres.Schema != "cefiot" {
		t.Fatalf("config %+v", c.IndexPostgres)
	}
	_, err = ParseConfig([]string{"-index", "postgres", "-index-dsn", "postgres://sink:s3cret@db/cefiot?sslmode=disable"}, noEnv)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a plaintext DSN: err = %v; want a refusal that does not repeat the password", err)
	}
}
