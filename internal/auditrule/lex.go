package auditrule

import (
	"fmt"
	"strings"
)

// splitWords splits a rules-file line the way auditctl does: on spaces
// only, with "\ " standing for a space inside a word and "\\" for a
// backslash. It reports comment and blank lines as nil.
func splitWords(line string) ([]string, error) {
	if strings.TrimLeft(line, " ") == "" {
		return nil, nil
	}
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line) && (line[i+1] == ' ' || line[i+1] == '\\'):
			cur.WriteByte(line[i+1])
			inWord = true
			i++
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) > 0 && strings.HasPrefix(words[0], "#") {
		return nil, nil
	}
	for _, w := range words {
		if i := strings.IndexAny(w, "\t\r\n\x00"); i >= 0 {
			return nil, fmt.Errorf("word %q holds a %q: auditctl separates words with spaces only", w, w[i])
		}
	}
	return words, nil
}

// escapeWord is the inverse of splitWords for one word.
func escapeWord(s string) string {
	if !strings.ContainsAny(s, " \\") {
		return s
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	return strings.ReplaceAll(s, " ", `\ `)
}

// option is one parsed command-line option of a rules-file line.
type option struct {
	name string // "a", "F", "backlog_wait_time", ...
	arg  string
	word string // the word(s) as written, for error messages
}

// shortOpts says which of auditctl's short options take an argument
// (its getopt string "hicslDvtC:e:f:r:b:a:A:d:S:F:m:R:w:W:k:p:q:").
var shortOpts = map[byte]bool{
	'h': false, 'i': false, 'c': false, 's': false, 'l': false, 'D': false, 'v': false, 't': false,
	'C': true, 'e': true, 'f': true, 'r': true, 'b': true, 'a': true, 'A': true, 'd': true,
	'S': true, 'F': true, 'm': true, 'R': true, 'w': true, 'W': true, 'k': true, 'p': true, 'q': true,
}

var longOpts = map[string]bool{
	"loginuid-immutable": false, "backlog_wait_time": true, "reset-lost": false,
	"reset_backlog_wait_time_actual": false, "signal": true,
}

// getopt splits words into options like GNU getopt_long: option clusters
// ("-ic"), attached ("-Fuid=0") or separate arguments, long options with
// "=value" or a separate value, and words that are no option at all.
func getopt(words []string) (opts []option, extra []string, err error) {
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "--":
			return opts, append(extra, words[i+1:]...), nil
		case strings.HasPrefix(w, "--"):
			name, val, hasVal := strings.Cut(w[2:], "=")
			takes, ok := longOpts[name]
			if !ok {
				return nil, nil, fmt.Errorf("unknown option %q", w)
			}
			if takes && !hasVal {
				if i+1 >= len(words) {
					return nil, nil, fmt.Errorf("option %q needs a value", w)
				}
				i++
				val = words[i]
			} else if !takes && hasVal {
				return nil, nil, fmt.Errorf("option --%s takes no value", name)
			}
			opts = append(opts, option{name: name, arg: val, word: w})
		case len(w) > 1 && w[0] == '-':
			for j := 1; j < len(w); j++ {
				takes, ok := shortOpts[w[j]]
				if !ok {
					return nil, nil, fmt.Errorf("unknown option -%c in %q", w[j], w)
				}
				o := option{name: string(w[j]), word: w}
				if takes {
					if j+1 < len(w) {
						o.arg = w[j+1:]
					} else {
						if i+1 >= len(words) {
							return nil, nil, fmt.Errorf("option -%c needs a value", w[j])
						}
						i++
						o.arg = words[i]
						o.word = w + " " + words[i]
					}
					opts = append(opts, o)
					break
				}
				opts = append(opts, o)
			}
		default:
			extra = append(extra, w)
		}
	}
	return opts, extra, nil
}
