package pglocal

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ownConfName is the file of this package's settings in the data
// directory; postgresql.conf includes it last.
const ownConfName = "pglocal.conf"

const includeLine = "include '" + ownConfName + "'"

// settings are the postgresql.conf settings of a server on port: the
// package's own, then cfg.Settings over them.
func settings(l layout, port int, extra map[string]string) string {
	var b strings.Builder
	b.WriteString("# Written by pglocal on every start; edits are lost.\n")
	set := func(name, value string) { fmt.Fprintf(&b, "%s = %s\n", name, value) }
	set("listen_addresses", quote("127.0.0.1"))
	set("port", strconv.Itoa(port))
	set("unix_socket_directories", quote(l.socketDir()))
	set("unix_socket_permissions", "0700")
	set("ssl", "on")
	set("ssl_cert_file", quote(l.cert()))
	set("ssl_key_file", quote(l.key()))
	set("ssl_ca_file", quote(l.ca()))
	set("ssl_min_protocol_version", quote("TLSv1.2"))
	set("password_encryption", quote("scram-sha-256"))
	set("fsync", "on")
	set("synchronous_commit", "on")
	set("full_page_writes", "on")
	set("log_destination", quote("stderr"))
	set("logging_collector", "off")
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		set(name, extra[name])
	}
	return b.String()
}

// hba admits TCP clients over TLS with SCRAM passwords only, and the
// bootstrap superuser only over the Unix socket (with its password). What
// no line admits is refused, plaintext TCP among it.
func hba() string {
	return `# Written by pglocal on every start; edits are lost.
# TYPE   DATABASE USER       ADDRESS       METHOD
local    all      ` + superuser + `                 scram-sha-256
hostssl  all      ` + superuser + `   127.0.0.1/32  reject
hostssl  all      all        127.0.0.1/32  scram-sha-256
`
}

// quote writes s as a postgresql.conf string.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(s) + "'"
}

// writeConf writes the settings and pg_hba.conf, and makes postgresql.conf
// include the settings (once).
func writeConf(o owner, l layout, port int, extra map[string]string) error {
	main, err := os.ReadFile(l.mainConf())
	if err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}
	if !strings.Contains(string(main), "\n"+includeLine+"\n") {
		main = append(main, "\n# pglocal's settings, last so that they win.\n"+includeLine+"\n"...)
		if err := o.writeFile(l.mainConf(), main, 0o600); err != nil {
			return err
		}
	}
	if err := o.writeFile(l.ownConf(), []byte(settings(l, port, extra)), 0o600); err != nil {
		return err
	}
	return o.writeFile(l.hbaConf(), []byte(hba()), 0o600)
}
