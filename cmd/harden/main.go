// Command harden brings a VM to its hardening policy at every boot and proves it.
//
// This package is the command line only: commands, flags, help, completion, the man page and
// exit codes. The work is in internal/engine, the steps/ packages and internal/alert.
//
// The command line is built on spf13/cobra (as flyctl, kubectl and gh are): GNU-style flags
// (--dry-run, -h/--help on every command), shell completion and the harden(8) page all come
// from the one command tree built in newRoot. The tree is built per run, never at package
// init, so `harden version` starts as fast as before.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Set at build time by the Makefile (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes shared by every command. apply adds 2 for "changes pending" with
// --detailed-exitcode: see exitCodesHelp.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed (bad policy, a step failed, a delivery error)
	exitUsage = 2 // the command line is wrong: nothing ran
)

// exitCodesHelp is the exit-code contract, printed by `harden apply --help` and in harden(8).
const exitCodesHelp = `Exit status:
  0  ok, and nothing changed (dry-run: nothing would change)
  1  error: the policy did not load (the default firewall was applied), a step failed or
     was cancelled, or a finding at or above run.fail_on
  2  with --detailed-exitcode only: changes were made (dry-run: would be made)
  2  also: a usage error (unknown flag or command, bad flag value, stray argument). Nothing
     ran, stdout is empty, and the reason is on stderr. A run that started always prints its
     plan or report on stdout, so with --detailed-exitcode "exit 2 and a report on stdout"
     means changes pending, "exit 2 and nothing on stdout" means the command line is wrong.`

// exitCode ends a command with a code; whatever it had to say was printed already.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usagef is a usage error found by a command itself (a flag value pflag cannot check).
func usagef(format string, a ...any) error { return fmt.Errorf(format, a...) }

func main() {
	// `harden version` answers before the signal watcher starts: its goroutines wake three
	// more threads, about 1 ms of a 14 ms start here (perf stat, 200 runs).
	if args := os.Args[1:]; isVersion(args) {
		printVersion(os.Stdout)
		os.Exit(exitOK)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code. Commands return
// exitCode for their own outcome; any other error comes from the command line itself
// (cobra's parsing, an argument check, usagef) and exits 2 with a hint on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// `harden version` answers without building the command tree (some 300 allocations):
	// it is the start-up time the design bounds. Same output as the tree's version command.
	if isVersion(args) {
		printVersion(stdout)
		return exitOK
	}
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	}
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
	return exitUsage
}

// isVersion reports whether the command line only asks for the version.
func isVersion(args []string) bool {
	return len(args) == 1 && (args[0] == "version" || args[0] == "--version")
}

// newRoot builds the whole command tree.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "harden",
		Short: "bring this machine to its hardening policy and prove it",
		Long: `harden brings this machine to its hardening policy and proves it: nftables firewall,
kernel settings, sshd, accounts, kernel audit rules, packages, ClamAV and systemd units, in
ordered, idempotent steps that read the result back. Every change goes to the journal. At
boot it runs from its systemd units (harden install); harden watch raises alerts.

Start with "harden apply --dry-run": it changes nothing and prints what would change.`,
		Version: version + " (commit " + commit + ")",
		// Errors are printed by run (usage) or by the command itself (exitCode).
		SilenceErrors: true,
		SilenceUsage:  true,
		// `harden` alone is a usage error: the usage goes to stderr and the exit is 2.
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(stderr, cmd.UsageString())
			return exitCode(exitUsage)
		},
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("harden {{.Version}}\n")
	root.AddCommand(
		newApplyCmd(stdout, stderr),
		newPolicyCmd(stdout, stderr),
		newWatchCmd(stderr),
		newAlertCmd(stdout, stderr),
		newInstallCmd(stdout, stderr),
		newStampCmd(stdout, stderr),
		newFreshclamCmd(stdout, stderr),
		newBootCmd(stdout, stderr),
		newManCmd(stdout),
		newRulesCmd(stdout),
		newVersionCmd(stdout),
	)
	return root
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print harden's version and commit",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			printVersion(stdout)
			return nil
		},
	}
}

func printVersion(w io.Writer) { fmt.Fprintf(w, "harden %s (commit %s)\n", version, commit) }

// fail prints a command's error on stderr and returns exit 1. An error that already names
// the command ("install: ...", from the package that did the work) is not prefixed twice.
func fail(stderr io.Writer, cmd *cobra.Command, err error) error {
	name := cmd.Name()
	msg := err.Error()
	if !strings.HasPrefix(msg, name+": ") {
		msg = name + ": " + msg
	}
	fmt.Fprintf(stderr, "harden %s\n", msg)
	return exitCode(exitError)
}
