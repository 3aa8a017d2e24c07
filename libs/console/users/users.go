// Package users is the console's people: local users with Argon2id
// password hashes, in a YAML file (or a Kubernetes Secret mounted as one),
// each with a role (viewer, operator) that becomes their identity in the
// site, <role>/<name>, which the services authorize and audit when the
// console acts for them.
//
// On a first start with no users file, Bootstrap makes one with an
// administrator and a generated password, which the caller prints once (as
// Frigate does); only the hash is stored.
package users

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/crypto/argon2"
	"gopkg.in/yaml.v3"

	"github.com/cefiot/cefiot/libs/access"
)

// Roles a console user may have.
var roles = map[string]string{"viewer": access.ViewerPrefix, "operator": access.OperatorPrefix, "admin": access.AdminPrefix}

// User is one person who may log in to the console.
type User struct {
	Name string `yaml:"name"`
	Role string `yaml:"role"`
	// Hash is the Argon2id hash of the password (PHC string format); empty
	// for a user who signs on only through the trusted proxy.
	Hash string `yaml:"hash,omitempty"`
	// Cameras, when set, limit the user to those cameras: every API, the
	// console's page included, answers only about them.
	Cameras []string `yaml:"cameras,omitempty"`
}

// Component is the user's identity in the site: operator/alice.
func (u User) Component() string { return roles[u.Role] + u.Name }

// File is the users file.
type File struct {
	Users []User `yaml:"users"`
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

// Load reads and checks the users file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, u := range f.Users {
		if err := u.check(); err != nil {
			return nil, fmt.Errorf("users file %s: users[%d].%w", path, i, err)
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("users file %s: users[%d].name %q: listed twice", path, i, u.Name)
		}
		seen[u.Name] = true
	}
	return &f, nil
}

// check says what is wrong with u, naming the field.
func (u User) check() error {
	switch {
	case !validName.MatchString(u.Name):
		return fmt.Errorf("name %q: lower-case letters, digits, '.' or '-'", u.Name)
	case roles[u.Role] == "":
		return fmt.Errorf("role %q: want viewer, operator or admin", u.Role)
	}
	if _, err := parseHash(u.Hash); u.Hash != "" && err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	for _, c := range u.Cameras {
		if !validName.MatchString(c) {
			return fmt.Errorf("cameras: %q is not a camera name", c)
		}
	}
	return nil
}

// Find returns the user named name.
func (f *File) Find(name string) (User, bool) {
	for _, u := range f.Users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// Bootstrap makes the users file at path with one administrator, admin,
// and a generated password, which it returns (print it once; only its hash is
// stored). It refuses to replace a file that exists.
func Bootstrap(path string) (password string, err error) {
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("users file %s exists", path)
	}
	if password, err = generatePassword(); err != nil {
		return "", err
	}
	hash, err := Hash(password)
	if err != nil {
		return "", err
	}
	b, err := yaml.Marshal(File{Users: []User{{Name: "admin", Role: "admin", Hash: hash}}})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("users file: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("users file: %w", err)
	}
	return password, nil
}

// Argon2id parameters (RFC 9106's second recommended option, with 64 MiB).
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
)

// Hash is the Argon2id hash of password in the PHC string format.
func Hash(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

type params struct {
	memory    uint32
	time      uint32
	threads   uint8
	salt, key []byte
}

func parseHash(h string) (params, error) {
	var p params
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, errors.New("not an Argon2id hash ($argon2id$v=19$m=...,t=...,p=...$salt$key)")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, fmt.Errorf("argon2 version %q: want v=%d", parts[2], argon2.Version)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, fmt.Errorf("argon2 parameters %q: %w", parts[3], err)
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return p, fmt.Errorf("salt: %w", err)
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) == 0 {
		return p, fmt.Errorf("key: %v", err)
	}
	return p, nil
}

// Verify reports whether password matches the hash h (in constant time).
func Verify(h, password string) bool {
	p, err := parseHash(h)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1
}
