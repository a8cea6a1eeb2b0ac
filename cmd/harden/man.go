package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The harden(8) page is generated from the command tree itself (names, usage lines, help
// texts, every flag), so it cannot list a flag the binary lacks or miss one it has. It is
// written as roff here rather than with cobra/doc: that package makes one page per command
// and brings a Markdown converter into the binary, where one page in section 8, with the
// exit status and files sections below, is what the units' Documentation=man:harden(8) and
// an operator's `man harden` expect.

// manFiles is the FILES section: what harden reads and writes on a machine.
var manFiles = [][2]string{
	{"/etc/harden/policy.yaml", "the machine's policy, laid over the embedded default; must be owned by root and not writable by group or others"},
	{"/etc/harden/image-build", "the image build stamp (BUILD_TIME, IMAGE_ID) written by harden stamp"},
	{"/run/harden.lock", "one run at a time: exclusive for apply, shared for a dry-run"},
	{"/run/harden-freshclam/lock", "one signature download at a time (harden freshclam holds it, not the run lock, while freshclam downloads)"},
	{"/var/lib/harden/last-run.json, last-run-dryrun.json", "the last run's report (the --output json document)"},
	{"/var/lib/prometheus/node-exporter/harden*.prom", "node_exporter textfiles: harden.prom (the last apply), harden-dryrun.prom (the last recorded dry-run), harden-watch.prom (harden watch)"},
	{"/var/lib/harden/spool/", "the alert spool: alerts/, delivered/, deadletter/<sink>/ (alerts a sink refused for good) and inbox/"},
	{"/var/lib/harden/backup/", "the original of every file harden replaced, per run"},
	{"/etc/systemd/system/harden*.service, harden-audit.timer", "the boot units written by harden install"},
	{RulesPath, "the Prometheus alerting rules (also: harden prometheus-rules)"},
}

// manEnvironment is the ENVIRONMENT section.
var manEnvironment = [][2]string{
	{"HARDEN_REFUSE_HOST_NETNS=1", "the firewall step refuses this machine's own network namespace (test and CI machines)"},
	{"HARDEN_REFUSE_AUDIT_LOCK=1", "the audit step never locks the kernel's audit rules (-e 2)"},
	{"FLY_PRIVATE_IP, FLY_APP_NAME, FLY_MACHINE_ID, FLY_REGION", "a Fly Machine's private address (private_networks: [auto]) and the context stamped on alerts"},
	{"CLAM_VIRUSEVENT_FILENAME, CLAM_VIRUSEVENT_VIRUSNAME", "set by clamd for harden alert virus"},
}

func newManCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "man",
		Short: "print the harden(8) manual page (roff)",
		Long: `Prints the harden(8) page, generated from this binary's own commands and flags. harden
install writes it to ` + ManPagePath + `.`,
		Example: `  harden man | man -l -`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := stdout.Write(manPage(cmd.Root()))
			return err
		},
	}
}

// manPage renders harden(8) from the command tree.
func manPage(root *cobra.Command) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, ".TH HARDEN 8 \"\" \"harden %s\" \"System Administration\"\n", roffQuoted(version))
	b.WriteString(".SH NAME\nharden \\- " + roffText(root.Short) + "\n")
	b.WriteString(".SH SYNOPSIS\n")
	for _, c := range manCommands(root) {
		fmt.Fprintf(&b, ".B %s\n.br\n", roffText(strings.TrimSpace(c.UseLine())))
	}
	b.WriteString(".SH DESCRIPTION\n")
	writeParagraphs(&b, root.Long)
	b.WriteString(".SH COMMANDS\n")
	for _, c := range manCommands(root) {
		fmt.Fprintf(&b, ".SS \"%s\"\n", roffQuoted(strings.TrimSpace(c.UseLine())))
		text := c.Long
		if text == "" {
			text = upperFirst(c.Short) + "."
		}
		writeParagraphs(&b, text)
		if c.Example != "" {
			b.WriteString(".PP\nExamples:\n.PP\n.RS 4\n.nf\n")
			for _, line := range strings.Split(c.Example, "\n") {
				b.WriteString(roffLine(strings.TrimPrefix(line, "  ")) + "\n")
			}
			b.WriteString(".fi\n.RE\n")
		}
		writeFlags(&b, c.LocalFlags())
	}
	b.WriteString(".SH OPTIONS\nEvery command takes\n")
	b.WriteString(".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nprint the command's help and exit 0\n")
	b.WriteString(".PP\nand \\fBharden\\fR itself\n")
	writeFlags(&b, root.LocalFlags())
	b.WriteString(".SH \"EXIT STATUS\"\n")
	writeParagraphs(&b, exitCodesHelp)
	b.WriteString(".SH ENVIRONMENT\n")
	writeTable(&b, manEnvironment)
	b.WriteString(".SH FILES\n")
	writeTable(&b, manFiles)
	b.WriteString(".SH \"SEE ALSO\"\n")
	b.WriteString("\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1), \\fBnft\\fR(8), \\fBauditctl\\fR(8), \\fBsshd_config\\fR(5), " +
		"\\fBclamd.conf\\fR(5), \\fBsystemd-tmpfiles\\fR(8)\n.PP\nhttps://github.com/harden-dev/harden\n")
	return b.Bytes()
}

// manCommands lists the commands a user can run, depth-first in the order help shows them:
// hidden ones, cobra's help command and the groups that only hold others are left out.
func manCommands(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || !sub.IsAvailableCommand() || sub.Name() == "help" {
				continue
			}
			if !sub.HasAvailableSubCommands() {
				out = append(out, sub)
			}
			walk(sub)
		}
	}
	walk(root)
	return out
}

// writeFlags writes one .TP entry per flag: "--name VALUE" (and "-x"), the usage, the default.
func writeFlags(b *bytes.Buffer, fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		varname, usage := pflag.UnquoteUsage(f)
		head := ""
		if f.Shorthand != "" {
			head = "\\fB\\-" + roffText(f.Shorthand) + "\\fR, "
		}
		head += "\\fB\\-\\-" + roffText(f.Name) + "\\fR"
		if varname != "" && f.Value.Type() != "bool" {
			head += " \\fI" + roffText(varname) + "\\fR"
		}
		if def := f.DefValue; def != "" && def != "false" && def != "[]" {
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(b, ".TP\n%s\n%s\n", head, roffLine(usage))
	})
}

func writeTable(b *bytes.Buffer, rows [][2]string) {
	for _, r := range rows {
		fmt.Fprintf(b, ".TP\n\\fB%s\\fR\n%s\n", roffText(r[0]), roffLine(r[1]))
	}
}

// writeParagraphs turns help text into roff: blank lines separate paragraphs, and lines
// indented by two or more spaces (lists, examples) are kept as they are.
func writeParagraphs(b *bytes.Buffer, text string) {
	b.WriteString(".PP\n")
	inVerbatim := false
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		verbatim := strings.HasPrefix(line, "  ")
		switch {
		case verbatim && !inVerbatim:
			b.WriteString(".RS 4\n.nf\n")
		case !verbatim && inVerbatim:
			b.WriteString(".fi\n.RE\n")
		}
		inVerbatim = verbatim
		switch {
		case strings.TrimSpace(line) == "":
			if !inVerbatim {
				b.WriteString(".PP\n")
			}
		case verbatim:
			b.WriteString(roffLine(strings.TrimPrefix(line, "  ")) + "\n")
		default:
			b.WriteString(roffLine(line) + "\n")
		}
	}
	if inVerbatim {
		b.WriteString(".fi\n.RE\n")
	}
}

// roffText escapes text for roff: backslashes, and hyphens so they print as ASCII minus
// (what a user types), never as a typographic hyphen.
func roffText(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	return strings.ReplaceAll(s, "-", `\-`)
}

// roffLine is roffText for a whole input line: a line starting with "." or "'" would be a
// roff request, so it is protected with the zero-width \&.
func roffLine(s string) string {
	s = roffText(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func roffQuoted(s string) string { return strings.ReplaceAll(roffText(s), `"`, `\(dq`) }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
