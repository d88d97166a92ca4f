package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes. They are part of payctl's interface: scripts rely on them,
// and the usage text and the README list them.
const (
	exitOK       = 0 // the command did what it was asked
	exitError    = 1 // it could not: a server unreachable, a stream missing, ...
	exitUsage    = 2 // the command line is wrong: unknown command or flag, missing argument
	exitNotFound = 3 // what it was asked about does not exist: a reference, a dead letter
)

// usageError is a mistake in the command line (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// notFoundError says that what the command was asked about does not exist
// (exit 3).
type notFoundError struct{ err error }

func (e notFoundError) Error() string { return e.err.Error() }
func (e notFoundError) Unwrap() error { return e.err }

func notFoundf(format string, args ...any) error {
	return notFoundError{fmt.Errorf(format, args...)}
}

// exitCode maps the error run returned to the process's exit code. A help
// request (flag.ErrHelp) is not an error: the help went to stdout.
func exitCode(err error) int {
	var ue usageError
	var nf notFoundError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &nf):
		return exitNotFound
	}
	return exitError
}

// cli is where a command prints: results to stdout, progress and errors to
// stderr.
type cli struct {
	stdout, stderr io.Writer
}

// cmdFlags is a command's flag set with its help text. Parse accepts flags
// before, between and after the positional arguments ("payctl status
// ORD-1 --json"); "--" ends the flags.
type cmdFlags struct {
	*flag.FlagSet
	usage string // "payctl status [flags] <merchant_reference>"
	about string // what the command does, a few lines
}

// newFlags starts the flags of the command name ("payctl status"), whose
// arguments are written as in syntax ("[flags] <merchant_reference>").
func newFlags(name, syntax, about string) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, usage: name + " " + syntax, about: about}
}

// help prints the command's usage line, what it does, and its flags.
func (f *cmdFlags) help(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", f.usage, strings.TrimSpace(f.about))
	n := 0
	f.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nFlags:")
		f.SetOutput(w)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
	fmt.Fprintln(w, "\nExit codes: 0 ok, 1 error, 2 usage, 3 not found.")
}

// parse parses args and returns the positional arguments. On -h or --help
// it prints the help to stdout and returns flag.ErrHelp, before anything
// connects anywhere; on a bad flag it returns a usageError.
func (f *cmdFlags) parse(c cli, args []string) ([]string, error) {
	var pos []string
	for {
		err := f.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			f.help(c.stdout)
			return nil, flag.ErrHelp
		}
		if err != nil {
			return nil, usageError{fmt.Errorf("%w (see %s -h)", err, f.Name())}
		}
		rest := f.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// rawJSON is data as JSON when it is valid JSON, else as a JSON string, so
// that --json output always parses.
func rawJSON(data []byte) json.RawMessage {
	if json.Valid(data) {
		return json.RawMessage(data)
	}
	b, _ := json.Marshal(string(data))
	return b
}
