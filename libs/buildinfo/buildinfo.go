// Package buildinfo says which build a binary is: the version the build
// stamped into it (its commit).
package buildinfo

import "runtime/debug"

// buildVersion is stamped by the build (`make build` and the images:
// -ldflags "-X github.com/cefiot/cefiot/libs/buildinfo.buildVersion=$(git
// describe --always --dirty)"); Go itself stamps no commit into binaries
// built in a workspace.
var buildVersion string

// LinkerFlag is the -X linker flag that stamps version into a
// binary.
func LinkerFlag(version string) string {
	return "-X github.com/cefiot/cefiot/libs/buildinfo.buildVersion=" + version
}

// Version is the build's version: what the build stamped, else the commit
// Go recorded (12 hex digits, "-dirty" when the tree had changes), else
// the module version, else "devel".
func Version() string {
	if buildVersion != "" {
		return buildVersion
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case rev != "":
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		return rev
	case info.Main.Version != "" && info.Main.Version != "(devel)":
		return info.Main.Version
	}
	return "devel"
}
