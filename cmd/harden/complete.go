package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// stepNames are the steps in their order, from the same list apply runs.
func stepNames() []string {
	steps := buildSteps(stepOptions{root: "/"})
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Name()
	}
	return names
}

// completeSteps completes --only: step names, after any already typed ("os,fi<TAB>").
func completeSteps(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	prefix := ""
	if i := strings.LastIndex(toComplete, ","); i >= 0 {
		prefix = toComplete[:i+1]
	}
	typed := map[string]bool{}
	for _, s := range strings.Split(prefix, ",") {
		typed[strings.TrimSpace(s)] = true
	}
	var out []string
	for _, s := range stepNames() {
		if !typed[s] {
			out = append(out, prefix+s)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// completePolicyFiles completes a policy file argument: YAML files (and directories).
func completePolicyFiles(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
}

// completeNetns completes --netns with the namespaces `ip netns` knows.
func completeNetns(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	ents, _ := os.ReadDir("/run/netns")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
