package pglocal

import (
	"strings"
	"testing"
)

// TestHBAAdmitsOnlyTLSWithSCRAM: every line of pg_hba.conf is the
// superuser's socket with its password, a reject, or hostssl with SCRAM.
func TestHBAAdmitsOnlyTLSWithSCRAM(t *testing.T) {
	for _, line := range strings.Split(hba(), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		method := f[len(f)-1]
		switch {
		case f[0] == "local" && f[2] == superuser && method == "scram-sha-256":
		case f[0] == "hostssl" && (method == "scram-sha-256" || method == "reject"):
		default:
			t.Errorf("pg_hba.conf line admits more than TLS with SCRAM: %q", line)
		}
	}
}

func TestSettings(t *testing.T) {
	l := layout{dir: "/srv/it's here"}
	got := settings(l, 5433, map[string]string{"shared_buffers": "'256MB'", "fsync": "off"})
	for _, want := range []string{
		"listen_addresses = '127.0.0.1'\n",
		"port = 5433\n",
		"unix_socket_directories = '/srv/it''s here/s'\n",
		"ssl = on\n",
		"ssl_key_file = '/srv/it''s here/tls/server.key'\n",
		"password_encryption = 'scram-sha-256'\n",
		"shared_buffers = '256MB'\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("settings lack %q:\n%s", want, got)
		}
	}
	// Extra settings come after the package's own, so they win.
	if strings.Index(got, "fsync = off") < strings.Index(got, "fsync = on") {
		t.Errorf("an extra setting does not come last:\n%s", got)
	}
}
