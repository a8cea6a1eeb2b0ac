// Command harden brings a VM to its hardening policy at every boot and proves it.
//
// This package is the command line only: flags, subcommands and exit codes. The work is in
// internal/engine and the steps/ packages.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Set at build time by the Makefile (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
)

const usage = `harden: bring this machine to its hardening policy and prove it

Usage:
  harden apply [--dry-run] [--policy FILE] [--only STEP[,STEP]] [--skip STEP[,STEP]]
               [--output text|json] [--detailed-exitcode] [--record]
  harden freshclam               update the ClamAV signatures, retrying within this boot
  harden policy validate FILE    check a policy file (syntax, fields, ownership)
  harden policy show [FILE]      print the effective policy (file laid over the default)
  harden policy doc [FILE]       Markdown table of exposed ports and enabled services
  harden watch                   alert daemon on the kernel audit stream
  harden alert virus             raise a virus alert (ClamAV VirusEvent)
  harden install                 write and enable harden's boot units
  harden stamp                   stamp an image build; remove what must not be baked in
  harden version

Exit codes: 0 ok and nothing changed; 1 error (bad policy, a step failed, a finding at or
above run.fail_on); 2 with --detailed-exitcode when changes were made (dry-run: would be).
`

// commands maps subcommands to their entry points. Each returns the process exit code.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
	"apply":     runApply,
	"policy":    runPolicy,
	"version":   runVersion,
	"watch":     runWatch,
	"alert":     runAlert,
	"install":   runInstall,
	"stamp":     runStamp,
	"freshclam": runFreshclam,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "harden: unknown command %q\n\n%s", args[0], usage)
		return 1
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "harden %s (commit %s)\n", version, commit)
	return 0
}

// parseFlags parses flags placed anywhere among the arguments (Go's flag package stops at
// the first positional one) and returns the positionals.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("harden "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
