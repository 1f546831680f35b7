// Package cli gives every command and subcommand of the samplit binary one
// help format and one way to handle flag errors:
//
//	Usage: samplit keys list [flags]
//
//	List the workspace's API keys (never the keys themselves).
//
//	Flags:
//	  --workspace NAME
//	        workspace name
//	        default: default
//
// --help (or -h) prints it to stdout and is not an error (exit 0); a bad
// flag prints the problem and the hint to run --help to stderr (exit 2).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrUsage means the arguments were wrong and the user has been told why on
// stderr: the command exits with status 2.
var ErrUsage = errors.New("usage error")

// Command is one command's flag set with its usage line and what it does.
type Command struct {
	// Usage is the synopsis after "Usage: ", e.g. "samplit keys list [flags]".
	Usage string
	// About says what the command does, in sentences; it may span lines.
	About string
	// After, if set, is printed after the flags (examples, other modes).
	After string
	FS    *flag.FlagSet
}

// New returns a Command with an empty flag set named name.
func New(name, usage, about string) *Command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &Command{Usage: usage, About: about, FS: fs}
}

// Parse parses args. It returns help true after printing the help to stdout
// for -h/--help, and ErrUsage after printing the problem to stderr.
func (c *Command) Parse(args []string, stdout, stderr io.Writer) (help bool, err error) {
	c.FS.SetOutput(io.Discard)
	err = c.FS.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.Help(stdout)
		return true, nil
	case err != nil:
		c.Fail(stderr, err.Error())
		return false, ErrUsage
	}
	return false, nil
}

// Fail tells the user what is wrong with the arguments and where the help is.
func (c *Command) Fail(stderr io.Writer, msg string) {
	fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for its flags.\n", c.FS.Name(), msg, c.FS.Name())
}

// Help writes the command's help to w.
func (c *Command) Help(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n", c.Usage)
	if c.About != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.About, "\n"))
	}
	n := 0
	c.FS.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		Flags(w, c.FS)
	}
	if c.After != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(c.After, "\n"))
	}
}

// Flags writes fs's flags in the help format, in name order.
func Flags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		value, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if value != "" {
			line += " " + strings.ToUpper(value)
		}
		fmt.Fprintln(w, line)
		for _, l := range strings.Split(usage, "\n") {
			fmt.Fprintf(w, "        %s\n", l)
		}
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "[]" && !strings.Contains(usage, "(default") {
			fmt.Fprintf(w, "        default: %s\n", d)
		}
	})
}
