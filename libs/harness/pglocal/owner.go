package pglocal

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// systemUser is the user Debian's package creates to run PostgreSQL.
const systemUser = "postgres"

// owner is the user initdb and postgres run as: the caller, or the
// postgres system user when the caller is root (PostgreSQL refuses root).
type owner struct {
	uid, gid int
	cred     *syscall.Credential // nil: run as the caller
}

// ownerFor returns who runs the server for a caller of effective uid euid.
func ownerFor(euid int) (owner, error) {
	if euid != 0 {
		return owner{uid: euid, gid: os.Getegid()}, nil
	}
	u, err := user.Lookup(systemUser)
	if err != nil {
		return owner{}, fmt.Errorf("running as root needs the %s system user (Debian's postgresql package creates it): %w", systemUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return owner{}, fmt.Errorf("user %s: uid %q: %w", systemUser, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return owner{}, fmt.Errorf("user %s: gid %q: %w", systemUser, u.Gid, err)
	}
	return owner{uid: uid, gid: gid, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}, nil
}

// chown gives path to the owner when the server runs as another user.
func (o owner) chown(path string) error {
	if o.cred == nil {
		return nil
	}
	if err := os.Lchown(path, o.uid, o.gid); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, systemUser, err)
	}
	return nil
}

// mkdir makes dir (mode 0700) owned by the owner.
func (o owner) mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	return o.chown(dir)
}

// writeFile writes b to path with mode, owned by the owner.
func (o owner) writeFile(path string, b []byte, mode fs.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// WriteFile keeps the mode of a file that was there; set it.
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := o.chown(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// checkReachable tells, when the server runs as another user, whether that
// user can reach dir: every parent must be searchable by it.
func (o owner) checkReachable(dir string) error {
	if o.cred == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("check %s: %w", p, err)
		}
		if !o.canSearch(st) {
			return fmt.Errorf("the %s user (uid %d) cannot reach %s: %s is %#o, owned by uid %d; make it searchable (chmod o+x) or choose another Dir",
				systemUser, o.uid, dir, p, st.Mode().Perm(), statUID(st))
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (o owner) canSearch(st fs.FileInfo) bool {
	perm := st.Mode().Perm()
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return perm&0o001 != 0
	}
	switch {
	case int(sys.Uid) == o.uid:
		return perm&0o100 != 0
	case int(sys.Gid) == o.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

func statUID(st fs.FileInfo) int {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid)
	}
	return -1
}
