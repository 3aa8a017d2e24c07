package redact

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpandReadsTheSecretFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "door")
	if err := os.WriteFile(secret, []byte("p@ss:w/rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := "rtsp://admin:${file:" + secret + "}@10.0.0.5:554/stream1"
	got, err := Expand(spec)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := u.User.Password(); pw != "p@ss:w/rd" || u.Host != "10.0.0.5:554" || u.Path != "/stream1" {
		t.Fatalf("expanded to %q (password %q)", got, pw)
	}
	// What is shown is the reference, never the password.
	if shown := URL(spec); strings.Contains(shown, "p@ss") {
		t.Fatalf("URL(spec) = %q shows the secret", shown)
	}
	if _, err := Expand("rtsp://a:${file:/nonexistent/x}@h/"); err == nil || !strings.Contains(err.Error(), "/nonexistent/x") {
		t.Fatalf("missing file: %v, want an error naming it", err)
	}
	if got, err := Expand("rtsp://cam/stream"); err != nil || got != "rtsp://cam/stream" {
		t.Fatalf("no reference: %q, %v", got, err)
	}
}
