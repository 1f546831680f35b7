package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/samplit/samplit/internal/cli"
)

// versionLine says what this binary is: the version stamped at build time
// (-ldflags "-X main.version=v1.2.3", as scripts/release would), else the
// module version from the build info ("(devel)" for a build from a work
// tree), then the VCS revision and its commit time from the build info, and
// whether the tree had uncommitted changes. A person reporting a bug can
// paste it as it is.
func versionLine() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "dev" && ok && info.Main.Version != "" {
		v = info.Main.Version
	}
	parts := []string{"samplit", v}
	if ok {
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if settings["vcs.modified"] == "true" {
				rev += "+modified"
			}
			parts = append(parts, "revision "+rev)
		}
		if t := settings["vcs.time"]; t != "" {
			parts = append(parts, "built from a commit of "+t)
		}
		parts = append(parts, info.GoVersion)
	}
	return strings.Join(parts, " ")
}

// versionCommand is `samplit version`.
func versionCommand(args []string, stdout, stderr io.Writer) error {
	c := cli.New("samplit version", "samplit version", "Print the version, the VCS revision and its commit time, and the Go version of this binary.")
	if err := parse(c, args, stdout, stderr); err != nil {
		return err
	}
	if c.FS.NArg() > 0 {
		c.Fail(stderr, fmt.Sprintf("unexpected argument %q", c.FS.Arg(0)))
		return exitCode(2)
	}
	fmt.Fprintln(stdout, versionLine())
	return nil
}
