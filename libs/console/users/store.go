package users

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"gopkg.in/yaml.v3"
)

// MinPasswordLength is the shortest password an administrator may set.
const MinPasswordLength = 12

// ErrLastAdmin refuses a change that would leave no administrator.
var ErrLastAdmin = errors.New("the last administrator cannot be removed or demoted")

// ErrInvalid marks a change refused for a field's value (named in the
// error).
var ErrInvalid = errors.New("invalid user")

// Store is the users file at Path as administrators change it through the
// console: each change reads the file, changes one user and writes the
// file again in one rename, so an edit by hand between two changes is
// kept. A Kubernetes Secret mounted read-only cannot be changed this way;
// there the Secret is the place to edit.
type Store struct {
	Path string
	mu   sync.Mutex
}

// Load reads the users file.
func (s *Store) Load() (*File, error) { return Load(s.Path) }

// Put adds u or replaces the user of that name. A password, when given,
// becomes the user's new password; a new user without one gets a
// generated password, which Put returns (shown once). A user who exists
// keeps their password when none is given.
func (s *Store) Put(u User, password string) (generated string, err error) {
	if password != "" && len(password) < MinPasswordLength {
		return "", fmt.Errorf("%w: password: at least %d characters", ErrInvalid, MinPasswordLength)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := Load(s.Path)
	if err != nil {
		return "", err
	}
	u.Hash = ""
	i := slices.IndexFunc(f.Users, func(x User) bool { return x.Name == u.Name })
	if i >= 0 {
		u.Hash = f.Users[i].Hash
	}
	if password == "" && i < 0 {
		if password, err = generatePassword(); err != nil {
			return "", err
		}
		generated = password
	}
	if password != "" {
		if u.Hash, err = Hash(password); err != nil {
			return "", err
		}
	}
	if err := u.check(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if i >= 0 {
		f.Users[i] = u
	} else {
		f.Users = append(f.Users, u)
	}
	if err := s.save(f); err != nil {
		return "", err
	}
	return generated, nil
}

// Delete removes the user named name; it reports whether there was one.
func (s *Store) Delete(name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := Load(s.Path)
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(f.Users, func(x User) bool { return x.Name == name })
	if i < 0 {
		return false, nil
	}
	f.Users = slices.Delete(f.Users, i, i+1)
	return true, s.save(f)
}

// save writes f in place of the file, if an administrator is left.
func (s *Store) save(f *File) error {
	if !slices.ContainsFunc(f.Users, func(u User) bool { return u.Role == "admin" }) {
		return ErrLastAdmin
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	tmp := s.Path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	return nil
}

func generatePassword() (string, error) {
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}
