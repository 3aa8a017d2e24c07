package redact

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// fileRef is a reference to a secret kept in a file: ${file:/path}.
var fileRef = regexp.MustCompile(`\$\{file:([^}]+)\}`)

// Expand replaces every ${file:/path} in s with the trimmed contents of the
// file, percent-encoded for a URL's user info, so a camera URL in the
// pipeline spec can name its password without holding it:
//
//	rtsp://admin:${file:/etc/cefiot/cameras/door}@10.0.0.5:554/stream1
//
// The spec, the APIs, logs and metrics only ever see the reference; the
// process that connects reads the file (a mounted Kubernetes Secret) each
// time it does, so a changed password takes effect at the next connection.
func Expand(s string) (string, error) {
	var errs []string
	out := fileRef.ReplaceAllStringFunc(s, func(m string) string {
		path := fileRef.FindStringSubmatch(m)[1]
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Sprintf("secret %s: %v", path, err))
			return m
		}
		return escapeUserinfo(strings.TrimSpace(string(b)))
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// escapeUserinfo percent-encodes everything but RFC 3986's unreserved
// characters.
func escapeUserinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
