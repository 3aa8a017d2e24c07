// Package redact keeps credentials out of what cefiot shows: a camera URL's
// password never appears in a log line, an API answer, a metric or the
// console. The stored value keeps it (capture needs it to connect); every
// way out goes through URL or Params.
package redact

import "net/url"

// Mask replaces a password.
const Mask = "xxxxx"

// URL returns s with the password of a URL replaced by Mask; anything that
// is not a URL with a password comes back unchanged.
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil || u.Scheme == "" {
		return s
	}
	if _, ok := u.User.Password(); !ok {
		return s
	}
	u.User = url.UserPassword(u.User.Username(), Mask)
	return u.String()
}

// Params returns a copy of params with every value passed through URL.
func Params(params map[string]string) map[string]string {
	if params == nil {
		return nil
	}
	out := make(map[string]string, len(params))
	for k, v := range params {
		out[k] = URL(v)
	}
	return out
}

// Restore puts back the stored secrets into params that were read through
// Params and written again unchanged: a value equal to the redacted form of
// the stored one (and not the stored one itself) takes the stored value.
// A new or changed value is kept as given.
func Restore(params, stored map[string]string) {
	for k, v := range params {
		if s, ok := stored[k]; ok && s != v && URL(s) == v {
			params[k] = s
		}
	}
}
