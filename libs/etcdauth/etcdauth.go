// Package etcdauth turns on etcd's authorization for a site: with mutual
// TLS, etcd names a client by its certificate's common name, which cefiot's
// CA sets to the component (scheduler, worker/enrich, operator/alice). The
// scheduler is etcd's root; a worker may read the site's keys and write
// only its registration and its claims, so a worker's identity cannot
// declare workloads, assign them or apply a spec; an observer may only
// read. Everyone else (a certificate of the site without a user) is
// refused.
package etcdauth

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/placement"
)

// Role names.
const (
	RoleWorker   = "cefiot-worker"
	RoleObserver = "cefiot-observer"
	rootRole     = "root"
	rootUser     = "root"
)

// Enable creates the site's roles and users and turns authorization on; it
// is idempotent, so every scheduler replica runs it at start. cli must
// connect as the scheduler (or before authorization is on). observers are
// further identities (operator/alice) that may read the site's keys.
func Enable(ctx context.Context, cli *clientv3.Client, keys placement.Keys, observers ...string) error {
	site := keys.Prefix()
	for _, r := range []struct {
		role    string
		perm    clientv3.PermissionType
		prefix  string
		ofRoles []string
	}{
		{RoleWorker, clientv3.PermissionType(clientv3.PermRead), site, nil},
		{RoleWorker, clientv3.PermissionType(clientv3.PermReadWrite), keys.Workers(), nil},
		{RoleWorker, clientv3.PermissionType(clientv3.PermReadWrite), keys.Claims(), nil},
		{RoleObserver, clientv3.PermissionType(clientv3.PermRead), site, nil},
	} {
		if err := ignoreExists(cli.RoleAdd(ctx, r.role)); err != nil {
			return fmt.Errorf("etcd role %s: %w", r.role, err)
		}
		if _, err := cli.RoleGrantPermission(ctx, r.role, r.prefix, clientv3.GetPrefixRangeEnd(r.prefix), r.perm); err != nil {
			return fmt.Errorf("etcd role %s on %s: %w", r.role, r.prefix, err)
		}
	}
	users := map[string]string{rootUser: rootRole, access.Scheduler: rootRole}
	for _, k := range pipeline.Kinds() {
		users[access.Worker(k)] = RoleWorker
	}
	for _, o := range observers {
		users[o] = RoleObserver
	}
	for user, role := range users {
		if err := ignoreExists(cli.UserAddWithOptions(ctx, user, "", &clientv3.UserAddOptions{NoPassword: true})); err != nil {
			return fmt.Errorf("etcd user %s: %w", user, err)
		}
		if _, err := cli.UserGrantRole(ctx, user, role); err != nil {
			return fmt.Errorf("etcd user %s role %s: %w", user, role, err)
		}
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("etcd: enable authorization: %w", err)
	}
	return nil
}

func ignoreExists[T any](_ T, err error) error {
	if errors.Is(err, rpctypes.ErrRoleAlreadyExist) || errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return nil
	}
	return err
}
