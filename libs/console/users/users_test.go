package users

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("hash %q", h)
	}
	if !Verify(h, "correct horse") || Verify(h, "correct horse ") || Verify("not a hash", "x") {
		t.Fatal("Verify")
	}
	if h2, _ := Hash("correct horse"); h2 == h {
		t.Fatal("the same hash twice: no salt")
	}
}

// TestBootstrapOnceThenLoad: the first start makes an operator "admin"
// with a generated password, readable only by its owner and holding only
// the hash; a second bootstrap refuses to replace it.
func TestBootstrapOnceThenLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	pw, err := Bootstrap(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 20 {
		t.Fatalf("password %q too short", pw)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), pw) {
		t.Fatal("the password is stored in clear")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := f.Find("admin")
	if !ok || u.Role != "admin" || u.Component() != "admin/admin" || !Verify(u.Hash, pw) {
		t.Fatalf("admin user %+v", u)
	}
	if _, err := Bootstrap(path); err == nil {
		t.Fatal("a second bootstrap replaced the users file")
	}
}

func TestLoadNamesTheBadField(t *testing.T) {
	h, _ := Hash("x")
	for _, tc := range []struct{ yaml, want string }{
		{"users:\n - {name: Alice, role: operator, hash: '" + h + "'}\n", "users[0].name"},
		{"users:\n - {name: alice, role: root, hash: '" + h + "'}\n", "users[0].role"},
		{"users:\n - {name: alice, role: viewer, hash: plain}\n", "users[0].hash"},
		{"users:\n - {name: a, role: viewer, hash: '" + h + "'}\n - {name: a, role: viewer, hash: '" + h + "'}\n", "users[1].name"},
		{"users:\n - {name: a, role: viewer, hash: '" + h + "', cameraz: [x]}\n", "cameraz"},
	} {
		path := filepath.Join(t.TempDir(), "users.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error naming %s", tc.yaml, err, tc.want)
		}
	}
}
