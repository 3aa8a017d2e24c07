package pglocal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFindBinFromEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvBin, dir)
	if _, err := FindBin(); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("empty %s: %v; want an error other than ErrNotFound (a wrong setting, not a missing install)", EnvBin, err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := FindBin(); err != nil || got != dir {
		t.Fatalf("FindBin = %q, %v; want %q", got, err, dir)
	}
}

func TestConfigRequiresDirAndTLS(t *testing.T) {
	if _, err := (Config{}).withDefaults(); err == nil {
		t.Error("a Config without Dir was taken")
	}
	if _, err := (Config{Dir: t.TempDir()}).withDefaults(); err == nil {
		t.Error("a Config without TLS was taken")
	}
}
