// Package config parses a service's flags with environment fallbacks and
// reports invalid values with the key that holds them.
//
// Every flag "some-key" can also be set through the environment variable
// CEFIOT_SOME_KEY; a flag given on the command line wins over the
// environment. Validation errors are *KeyError values, so a service that
// refuses to start names the key, where it came from and the reason.
package config

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"
)

// EnvPrefix is prepended to every environment variable name.
const EnvPrefix = "CEFIOT_"

// EnvName returns the environment variable that backs the flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// KeyError is an invalid configuration value.
type KeyError struct {
	Key    string // flag name
	Value  string
	Reason string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("config key %q (flag -%s or env %s) = %q: %s", e.Key, e.Key, EnvName(e.Key), e.Value, e.Reason)
}

// Invalid returns a *KeyError.
func Invalid(key, value, reason string) error {
	return &KeyError{Key: key, Value: value, Reason: reason}
}

// Parse parses args into fs, then fills every flag that was not given on the
// command line from the environment (lookupEnv is usually os.LookupEnv).
func Parse(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) error {
	fs.SetOutput(new(strings.Builder)) // usage is reported through the returned error
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &HelpError{Usage: Usage(fs), FromEnv: lookupEnv != nil}
		}
		if m := invalidValueRE.FindStringSubmatch(err.Error()); m != nil {
			if f := fs.Lookup(m[2]); f != nil {
				return Invalid(f.Name, m[1], describeSetError(f, err))
			}
		}
		return fmt.Errorf("parse flags: %w (run with -h for the keys)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("parse flags: unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || lookupEnv == nil {
			return
		}
		v, ok := lookupEnv(EnvName(f.Name))
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, Invalid(f.Name, v, describeSetError(f, err)))
		}
	})
	return errors.Join(errs...)
}

// HelpError is what Parse returns for -h or -help: it carries the flag
// defaults to print and matches flag.ErrHelp with errors.Is.
type HelpError struct {
	Usage   string
	FromEnv bool // the flags can also be set from the environment
}

func (e *HelpError) Error() string { return flag.ErrHelp.Error() }

// Unwrap makes errors.Is(err, flag.ErrHelp) hold.
func (e *HelpError) Unwrap() error { return flag.ErrHelp }

// Usage returns the flag defaults of fs as text, for -help.
func Usage(fs *flag.FlagSet) string {
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

// Checker collects validation errors.
type Checker struct{ errs []error }

// NotEmpty records an error when value is empty.
func (c *Checker) NotEmpty(key, value string) {
	if strings.TrimSpace(value) == "" {
		c.errs = append(c.errs, Invalid(key, value, "must not be empty"))
	}
}

// Check records an error with reason when ok is false.
func (c *Checker) Check(ok bool, key, value, reason string) {
	if !ok {
		c.errs = append(c.errs, Invalid(key, value, reason))
	}
}

// Add records err as is when it is not nil.
func (c *Checker) Add(err error) {
	if err != nil {
		c.errs = append(c.errs, err)
	}
}

// Err returns the collected errors joined, or nil.
func (c *Checker) Err() error { return errors.Join(c.errs...) }

var invalidValueRE = regexp.MustCompile(`^invalid value "(.*)" for flag -([^:]+): `)

// describeSetError turns the flag package's terse "parse error" into a
// reason that says what was expected.
func describeSetError(f *flag.Flag, err error) string {
	want := map[string]string{
		"*flag.durationValue": "invalid duration, want e.g. 500ms, 3s or 1m",
		"*flag.intValue":      "invalid integer",
		"*flag.int64Value":    "invalid integer",
		"*flag.uintValue":     "invalid non-negative integer",
		"*flag.float64Value":  "invalid number",
		"*flag.boolValue":     "invalid boolean, want true or false",
	}[fmt.Sprintf("%T", f.Value)]
	if want == "" {
		return err.Error()
	}
	return want
}

// List splits a comma-separated flag value into its trimmed, non-empty
// items.
func List(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
