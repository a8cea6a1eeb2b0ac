package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/harden-dev/harden/internal/policy"
)

func newPolicyCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy COMMAND",
		Short: "check, show and document policy files",
		Long: `The policy is YAML, version: 1. A machine's file (/etc/harden/policy.yaml) is laid over the
embedded default; unknown keys, wrong types and bad values are errors naming file:line:col and
the field.`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE(stderr),
	}
	var contentOnly bool
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "check a policy file: syntax, fields, cross-field rules, ownership",
		Long: `Checks a policy file as harden apply would load it: YAML syntax, every field and value,
the cross-field rules, and that the file and its directories are owned by root and not
writable by group or others (a policy anyone can edit is refused). Prints "FILE: ok" and exits
0, or prints the errors (file:line:col and the field) and exits 1.`,
		Example: `  harden policy validate /etc/harden/policy.yaml
  harden policy validate --content-only deploy/policy.yaml   # a file in a repository`,
		Args:              exactArgs(1, "FILE"),
		ValidArgsFunction: completePolicyFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			check := policy.CheckOwner
			if contentOnly {
				check = policy.SkipOwner
			}
			if _, err := policy.LoadFile(args[0], check); err != nil {
				fmt.Fprintln(stderr, err)
				return exitCode(exitError)
			}
			fmt.Fprintf(stdout, "%s: ok\n", args[0])
			return nil
		},
	}
	validate.Flags().BoolVar(&contentOnly, "content-only", false, "skip the ownership check (a file in a repository, before it is deployed)")
	show := &cobra.Command{
		Use:   "show [FILE]",
		Short: "print the effective policy: FILE (or the machine's) laid over the default",
		Long: `Prints the effective policy as YAML: FILE, else /etc/harden/policy.yaml, else the embedded
default, with every key the file leaves out filled in from the default.`,
		Args:              maxArgs(1, "FILE"),
		ValidArgsFunction: completePolicyFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPolicy(cmd, args, stderr, func(p *policy.Policy) error {
				b, err := p.YAML()
				if err == nil {
					_, err = stdout.Write(b)
				}
				return err
			})
		},
	}
	doc := &cobra.Command{
		Use:   "doc [FILE]",
		Short: "Markdown table of the exposed ports and enabled services, with their reasons",
		Long: `Prints the ports the firewall opens and the services allowed to run, each with its "why",
as Markdown: the documented and justified list the policy asks for, generated from the file
that is enforced.`,
		Args:              maxArgs(1, "FILE"),
		ValidArgsFunction: completePolicyFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withPolicy(cmd, args, stderr, func(p *policy.Policy) error { return p.WriteDoc(stdout) })
		},
	}
	cmd.AddCommand(validate, show, doc)
	return cmd
}

// withPolicy loads the named file (ownership not checked: showing is read-only) or, without
// one, the machine's policy or the embedded default.
func withPolicy(cmd *cobra.Command, args []string, stderr io.Writer, fn func(*policy.Policy) error) error {
	var p *policy.Policy
	var err error
	switch {
	case len(args) == 1:
		p, err = policy.LoadFile(args[0], policy.SkipOwner)
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
		return exitCode(exitError)
	}
	return nil
}

// groupRunE is the RunE of a command that only groups others (policy, alert): alone it is a
// usage error (usage on stderr, exit 2), and an unknown subcommand is named.
func groupRunE(stderr io.Writer) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		fmt.Fprint(stderr, cmd.UsageString())
		return exitCode(exitUsage)
	}
}

// exactArgs and maxArgs are cobra's checks with messages that name the argument.
func exactArgs(n int, name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return fmt.Errorf("missing %s", name)
		case len(args) > n:
			return fmt.Errorf("unexpected argument %q (want %d: %s)", args[n], n, name)
		}
		return nil
	}
}

func maxArgs(n int, name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return fmt.Errorf("unexpected argument %q (at most %d: %s)", args[n], n, name)
		}
		return nil
	}
}
