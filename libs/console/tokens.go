package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cefiot/cefiot/libs/pki"
)

// TokenPrefix starts every API token: cft_<id>_<secret>.
const TokenPrefix = "cft_"

// Token is an API token for scripts and API clients: it acts as
// <role>/<name> (viewer or operator), like a person. Only the SHA-256 of
// its secret is kept; the secret is shown once, when it is made.
type Token struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
	Role string `yaml:"role" json:"role"`
	Hash string `yaml:"hash" json:"-"`
	// Cameras, when set, limit the token to those cameras.
	Cameras []string  `yaml:"cameras,omitempty" json:"cameras,omitempty"`
	Created time.Time `yaml:"created" json:"created"`
	By      string    `yaml:"by" json:"by"`
}

// Component is the token's identity in the site.
func (t Token) Component() string { return t.Role + "/" + t.Name }

// tokens are the console's API tokens, kept in a file (0600) so they
// survive a restart; revoking one removes it at once.
type tokens struct {
	path   string
	logger *slog.Logger
	mu     sync.Mutex
}

type tokenFile struct {
	Tokens []Token `yaml:"tokens"`
}

func (s *tokens) load() (tokenFile, error) {
	var f tokenFile
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("tokens file: %w", err)
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("tokens file %s: %w", s.path, err)
	}
	return f, nil
}

func (s *tokens) save(f tokenFile) error {
	b, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	return os.Rename(tmp, s.path)
}

var tokenName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

// create makes a token named name with role, for by; it returns the token
// string (shown once).
func (s *tokens) create(name, role string, cameras []string, by string, now time.Time) (Token, string, error) {
	if !tokenName.MatchString(name) {
		return Token{}, "", fmt.Errorf("name %q: lower-case letters, digits, '.' or '-'", name)
	}
	if role != "viewer" && role != "operator" {
		return Token{}, "", fmt.Errorf("role %q: want viewer or operator", role)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Token{}, "", err
	}
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return Token{}, "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	t := Token{ID: hex.EncodeToString(id), Name: name, Role: role, Cameras: cameras, Hash: digest(secret), Created: now.UTC(), By: by}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.load()
	if err != nil {
		return Token{}, "", err
	}
	f.Tokens = append(f.Tokens, t)
	if err := s.save(f); err != nil {
		return Token{}, "", err
	}
	return t, TokenPrefix + t.ID + "_" + secret, nil
}

func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// check returns the token a bearer string is.
func (s *tokens) check(bearer string) (Token, error) {
	rest, ok := strings.CutPrefix(bearer, TokenPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 {
		return Token{}, errors.New("not a cefiot API token")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.load()
	if err != nil {
		return Token{}, err
	}
	for _, t := range f.Tokens {
		if t.ID == id && subtle.ConstantTimeCompare([]byte(t.Hash), []byte(digest(secret))) == 1 {
			return t, nil
		}
	}
	return Token{}, errors.New("unknown or revoked API token")
}

func (s *tokens) list() ([]Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.load()
	return f.Tokens, err
}

func (s *tokens) revoke(id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.load()
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(f.Tokens, func(t Token) bool { return t.ID == id })
	if i < 0 {
		return false, nil
	}
	f.Tokens = slices.Delete(f.Tokens, i, i+1)
	return true, s.save(f)
}

// serveTokens answers /api/tokens: GET lists (without secrets), POST
// {"name","role"} makes one and shows its secret once, DELETE
// /api/tokens/{id} revokes. Operators only (the gate checks the role).
func (s *tokens) serve(w http.ResponseWriter, r *http.Request, who pki.Identity) {
	id := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api/tokens"), "/")
	switch {
	case r.Method == http.MethodGet && id == "":
		ts, err := s.list()
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, map[string]any{"tokens": ts})
	case r.Method == http.MethodPost && id == "":
		var in struct {
			Name, Role string
			Cameras    []string
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, "tokens: want JSON {\"name\": ..., \"role\": viewer|operator}")
			return
		}
		t, secret, err := s.create(in.Name, in.Role, in.Cameras, who.String(), time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, "tokens: "+err.Error())
			return
		}
		s.logger.Info("API token made", "token", t.ID, "acts_as", t.Component(), "cameras", t.Cameras, "by", who.String())
		writeJSON(w, map[string]any{"token": t, "secret": secret})
	case r.Method == http.MethodDelete && id != "":
		ok, err := s.revoke(id)
		switch {
		case err != nil:
			writeError(w, http.StatusInternalServerError, err.Error())
		case !ok:
			writeError(w, http.StatusNotFound, "tokens: no token "+id)
		default:
			s.logger.Info("API token revoked", "token", id, "by", who.String())
			w.WriteHeader(http.StatusNoContent)
		}
	default:
		writeError(w, http.StatusMethodNotAllowed, "tokens: GET, POST or DELETE /api/tokens/{id}")
	}
}
