// Package mosquitto runs Debian's Mosquitto MQTT broker for tests, on
// loopback and over TLS only: a listener that demands a client certificate
// from the given CA (its identity becomes the user name), and, when users
// are given, one that takes a user name and password instead.
package mosquitto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/procs"
)

// Config says how to run the broker.
type Config struct {
	// Dir holds the broker's configuration and log.
	Dir string
	// CA, Cert and Key are PEM files: the broker's certificate and the CA
	// its clients' certificates must chain to.
	CA, Cert, Key string
	// Users, when not empty, opens a second TLS listener that takes these
	// user names and passwords (no client certificate).
	Users map[string]string
}

// Broker is a running Mosquitto.
type Broker struct {
	// CertAddr takes clients with a certificate; PasswordAddr (when Users
	// were given) clients with a user name and password.
	CertAddr, PasswordAddr string
	proc                   *procs.Proc
	log                    string
}

// Bin finds the mosquitto binary (Debian installs it in /usr/sbin).
func Bin() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	return "", errors.New("mosquitto not found (Debian package mosquitto; scripts/install-deps.sh installs it)")
}

// Start starts the broker and waits until it takes TLS connections.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	bin, err := Bin()
	if err != nil {
		return nil, err
	}
	certAddr, err := netx.FreeAddr()
	if err != nil {
		return nil, err
	}
	b := &Broker{CertAddr: certAddr, log: filepath.Join(cfg.Dir, "mosquitto.log")}
	conf, err := b.config(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cfg.Dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("mosquitto: write config: %w", err)
	}
	b.proc, err = procs.Start(procs.Spec{Name: "mosquitto", Path: bin, Args: []string{"-c", path}, LogPath: b.log})
	if err != nil {
		return nil, err
	}
	if err := b.waitReady(ctx); err != nil {
		b.Stop()
		return nil, err
	}
	return b, nil
}

func (b *Broker) config(cfg Config) (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("mosquitto: current user: %w", err)
	}
	host, port, _ := net.SplitHostPort(b.CertAddr)
	var c strings.Builder
	fmt.Fprintf(&c, "user %s\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nper_listener_settings true\n", u.Username)
	fmt.Fprintf(&c, "\nlistener %s %s\nallow_anonymous false\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\ntls_version tlsv1.2\n",
		port, host, cfg.CA, cfg.Cert, cfg.Key)
	if len(cfg.Users) > 0 {
		pwAddr, err := netx.FreeAddr()
		if err != nil {
			return "", err
		}
		b.PasswordAddr = pwAddr
		pwFile := filepath.Join(cfg.Dir, "passwords")
		if err := writePasswords(pwFile, cfg.Users); err != nil {
			return "", err
		}
		host, port, _ := net.SplitHostPort(pwAddr)
		fmt.Fprintf(&c, "\nlistener %s %s\nallow_anonymous false\npassword_file %s\ncertfile %s\nkeyfile %s\ntls_version tlsv1.2\n", port, host, pwFile, cfg.Cert, cfg.Key)
	}
	return c.String(), nil
}

// writePasswords writes a Mosquitto password file with mosquitto_passwd
// (which hashes them).
func writePasswords(path string, users map[string]string) error {
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		return fmt.Errorf("mosquitto: password file: %w", err)
	}
	for name, pw := range users {
		out, err := exec.Command("mosquitto_passwd", "-b", path, name, pw).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	return nil
}

// waitReady waits until the certificate listener accepts connections.
func (b *Broker) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		select {
		case <-b.proc.Done():
			return procs.WithLogTail(fmt.Errorf("mosquitto exited: %v", b.proc.Err()), b.log, procs.LogTail(b.log, 0, 20))
		default:
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", b.CertAddr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return procs.WithLogTail(fmt.Errorf("mosquitto not ready on %s: %v", b.CertAddr, err), b.log, procs.LogTail(b.log, 0, 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the broker.
func (b *Broker) Stop() {
	if b.proc != nil {
		b.proc.Stop(context.Background(), 3*time.Second)
	}
}

// Log returns the broker's log.
func (b *Broker) Log() string { return procs.LogTail(b.log, 0, 200) }
