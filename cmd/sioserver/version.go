package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// versionText is the line --version prints: the module's version, the
// commit it was built from (when the build recorded it), the Go version
// and the platform, from the binary's build information.
func versionText() string {
	version, module := "(unknown)", "github.com/siobridge/siobridge"
	var vcs []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path != "" {
			module = bi.Main.Path
		}
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			vcs = append(vcs, "commit "+rev)
		}
		if t := settings["vcs.time"]; t != "" {
			vcs = append(vcs, t)
		}
		if settings["vcs.modified"] == "true" {
			vcs = append(vcs, "modified")
		}
	}
	s := fmt.Sprintf("sioserver %s (%s", version, module)
	if len(vcs) > 0 {
		s += ", " + strings.Join(vcs, ", ")
	}
	return s + ") " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
