package main

import (
	"context"
	"fmt"
	"io"
)

// runBoot is where `harden boot` does its work; it returns the process exit code (COMMAND's
// status). Branch boot replaces this file with the real supervisor.
func runBoot(_ context.Context, opts bootOptions, _, stderr io.Writer) int {
	fmt.Fprintf(stderr, "harden boot: not in this build (would run %q)\n", opts.Command)
	return exitError
}
