package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/harden-dev/harden/internal/policy"
)

func runPolicy(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "harden policy: want validate FILE | show [FILE] | doc [FILE]\n")
		return 1
	}
	fs := newFlagSet("policy "+args[0], stderr)
	contentOnly := fs.Bool("content-only", false, "validate: skip the ownership check (files in a repository, before deployment)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return 1
	}
	switch {
	case args[0] == "validate" && len(pos) == 1:
		return policyValidate(pos[0], *contentOnly, stdout, stderr)
	case args[0] == "show" && len(pos) <= 1:
		return withPolicy(pos, stderr, func(p *policy.Policy) error {
			b, err := p.YAML()
			if err == nil {
				_, err = stdout.Write(b)
			}
			return err
		})
	case args[0] == "doc" && len(pos) <= 1:
		return withPolicy(pos, stderr, func(p *policy.Policy) error { return p.WriteDoc(stdout) })
	}
	fmt.Fprintf(stderr, "harden policy: bad arguments %q\n", args)
	return 1
}

func policyValidate(path string, contentOnly bool, stdout, stderr io.Writer) int {
	check := policy.CheckOwner
	if contentOnly {
		check = policy.SkipOwner
	}
	if _, err := policy.LoadFile(path, check); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

// withPolicy loads the named file (ownership not checked: showing is read-only) or, without
// one, the machine's policy or the embedded default.
func withPolicy(pos []string, stderr io.Writer, fn func(*policy.Policy) error) int {
	var p *policy.Policy
	var err error
	switch {
	case len(pos) == 1:
		p, err = policy.LoadFile(pos[0], policy.SkipOwner)
	default:
		if _, statErr := os.Stat(policy.DefaultPath); statErr != nil {
			p = policy.Default()
		} else {
			p, err = policy.LoadFile(policy.DefaultPath, policy.CheckOwner)
		}
	}
	if err == nil {
		err = fn(p)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
