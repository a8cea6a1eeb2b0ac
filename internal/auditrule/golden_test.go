package auditrule_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/harden-dev/harden/internal/auditnl"
	"github.com/harden-dev/harden/internal/auditrule"
	"github.com/harden-dev/harden/internal/testutil/hostaudit"
	"github.com/harden-dev/harden/internal/testutil/need"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goldenRecord is what auditctl 3.0.9 and the kernel did with one corpus
// line, captured by TestGoldenLive with HARDEN_UPDATE_GOLDEN=1.
type goldenRecord struct {
	Line   int      `json:"line"`   // line in testdata/corpus.rules
	Rule   string   `json:"rule"`   // the rule as written
	Dirs   []string `json:"dirs"`   // -w paths that were directories at capture
	Sent   string   `json:"sent"`   // base64 of the audit_rule_data auditctl sent ("" if it refused)
	Listed string   `json:"listed"` // base64 of the rule as the kernel listed it ("" if rejected)
	Text   string   `json:"text"`   // `auditctl -l` for the rule
	Error  string   `json:"error"`  // auditctl's complaint when it or the kernel refused
}

const goldenPath = "testdata/golden.json"

type corpusLine struct {
	line int
	text string
}

func readCorpus(t testing.TB) []corpusLine {
	f, err := os.Open("testdata/corpus.rules")
	require.NoError(t, err)
	defer f.Close()
	var out []corpusLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if strings.HasPrefix(l, "-") {
			out = append(out, corpusLine{n, l})
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func readGolden(t testing.TB) []goldenRecord {
	data, err := os.ReadFile(goldenPath)
	require.NoError(t, err)
	var recs []goldenRecord
	require.NoError(t, json.Unmarshal(data, &recs))
	return recs
}

func b64(t testing.TB, s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

// parserFor parses like auditctl did at capture time on an x86_64 host.
func parserFor(dirs []string) *auditrule.Parser {
	return &auditrule.Parser{
		Machine: auditrule.MachineX86_64,
		IsDir: func(p string) bool {
			for _, d := range dirs {
				if d == p {
					return true
				}
			}
			return false
		},
	}
}

// TestGolden checks the parser, encoder, decoder and printer against what
// auditctl and the kernel did with every corpus line. It needs no root.
func TestGolden(t *testing.T) {
	recs := readGolden(t)
	corpus := readCorpus(t)
	require.GreaterOrEqual(t, len(corpus), 100, "the corpus must hold at least 100 rules")
	require.Len(t, recs, len(corpus), "golden.json is stale: run TestGoldenLive with HARDEN_UPDATE_GOLDEN=1 as root")
	loaded := 0
	for i, rec := range recs {
		require.Equal(t, corpus[i].text, rec.Rule, "golden.json is stale for corpus line %d", corpus[i].line)
		p := parserFor(rec.Dirs)
		r, err := p.ParseRule(rec.Rule)
		if rec.Sent == "" {
			assert.Error(t, err, "line %d: auditctl refused %q (%s) but we parsed it", rec.Line, rec.Rule, rec.Error)
			continue
		}
		if !assert.NoError(t, err, "line %d", rec.Line) {
			continue
		}
		got, err := r.Marshal()
		require.NoError(t, err)
		assert.Equal(t, hex.EncodeToString(b64(t, rec.Sent)), hex.EncodeToString(got), "line %d: bytes sent for %q", rec.Line, rec.Rule)
		if rec.Listed == "" {
			continue // the kernel refused it; nothing listed
		}
		loaded++
		listed := b64(t, rec.Listed)
		norm, err := r.Normalize().Marshal()
		require.NoError(t, err)
		assert.Equal(t, hex.EncodeToString(listed), hex.EncodeToString(norm), "line %d: normalized bytes for %q", rec.Line, rec.Rule)
		dec, err := auditrule.Unmarshal(listed)
		require.NoError(t, err)
		assert.Equal(t, rec.Text, dec.Format(auditrule.MachineX86_64), "line %d: auditctl -l text", rec.Line)
		// auditctl -l text is lossy (-w on a directory, " -p x-w /path"
		// when perm precedes the path); the file form must read back to
		// the same kernel rule on any host.
		ft := dec.FileText()
		back, err := (&auditrule.Parser{Machine: auditrule.MachineX86_64, IsDir: func(string) bool { return true }}).ParseRule(ft)
		if assert.NoError(t, err, "line %d: reparse %q", rec.Line, ft) {
			assert.True(t, back.Equal(dec), "line %d: %q does not read back to the listed rule", rec.Line, ft)
		}
	}
	assert.GreaterOrEqual(t, loaded, 100, "at least 100 corpus rules must have been loaded by the kernel")
}

// TestGoldenLive loads every corpus line with auditctl on this host (under
// strace, to see the bytes it sends), lists what the kernel holds, and
// compares both with our encoding. With HARDEN_UPDATE_GOLDEN=1 it rewrites
// testdata/golden.json from what it saw.
func TestGoldenLive(t *testing.T) {
	need.Tool(t, "auditctl", "strace")
	conn := hostaudit.Lock(t)
	ctx := context.Background()
	dir := t.TempDir()
	var recs []goldenRecord
	for _, cl := range readCorpus(t) {
		rec := captureLine(t, ctx, conn, dir, cl)
		recs = append(recs, rec)
		p := &auditrule.Parser{Machine: auditrule.MachineX86_64}
		r, err := p.ParseRule(cl.text)
		if rec.Sent == "" {
			assert.Error(t, err, "line %d: auditctl refused %q (%s) but we parsed it", cl.line, cl.text, rec.Error)
			continue
		}
		if !assert.NoError(t, err, "line %d", cl.line) {
			continue
		}
		got, _ := r.Marshal()
		assert.Equal(t, hex.EncodeToString(b64(t, rec.Sent)), hex.EncodeToString(got), "line %d: %q", cl.line, cl.text)
		if rec.Listed != "" {
			norm, _ := r.Normalize().Marshal()
			assert.Equal(t, hex.EncodeToString(b64(t, rec.Listed)), hex.EncodeToString(norm), "line %d: %q", cl.line, cl.text)
			dec, err := auditrule.Unmarshal(b64(t, rec.Listed))
			require.NoError(t, err)
			assert.Equal(t, rec.Text, dec.Format(auditrule.MachineX86_64), "line %d", cl.line)
		}
	}
	if os.Getenv("HARDEN_UPDATE_GOLDEN") == "1" {
		data, err := json.MarshalIndent(recs, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(goldenPath, append(data, '\n'), 0o644))
	}
}

// captureLine loads one rule with `auditctl -R` under strace and records
// the bytes it sent, the kernel's listing and `auditctl -l`.
func captureLine(t *testing.T, ctx context.Context, conn *auditnl.Conn, dir string, cl corpusLine) goldenRecord {
	t.Helper()
	require.NoError(t, conn.DeleteAllRules(ctx))
	rec := goldenRecord{Line: cl.line, Rule: cl.text}
	words := strings.Fields(cl.text)
	for i, w := range words {
		if w == "-w" && i+1 < len(words) {
			p := words[i+1]
			for len(p) > 2 && strings.HasSuffix(p, "/") {
				p = p[:len(p)-1]
			}
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				rec.Dirs = append(rec.Dirs, p)
			}
		}
	}
	rules := filepath.Join(dir, "one.rules")
	trace := filepath.Join(dir, "strace.out")
	require.NoError(t, os.WriteFile(rules, []byte(cl.text+"\n"), 0o600))
	cmd := exec.Command("strace", "-f", "-qq", "-e", "trace=sendto", "-e", "write=all", "-o", trace, "auditctl", "-R", rules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	sent, err := addRulePayload(trace)
	require.NoError(t, err)
	if sent != nil {
		rec.Sent = base64.StdEncoding.EncodeToString(sent)
	}
	if runErr != nil {
		rec.Error = strings.TrimSpace(stderr.String())
		return rec
	}
	raw, err := conn.ListRulesRaw(ctx)
	require.NoError(t, err)
	require.Len(t, raw, 1, "line %d: the kernel should hold exactly the one rule", cl.line)
	rec.Listed = base64.StdEncoding.EncodeToString(raw[0])
	out, err := exec.Command("auditctl", "-l").Output()
	require.NoError(t, err)
	rec.Text = strings.TrimRight(string(out), "\n")
	require.NoError(t, conn.DeleteAllRules(ctx))
	return rec
}

// addRulePayload finds the AUDIT_ADD_RULE message in strace's hex dumps
// and returns its payload (without the 16-byte netlink header).
func addRulePayload(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var msg []byte
	inAdd := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "sendto(") {
			if inAdd {
				break
			}
			inAdd = strings.Contains(line, "AUDIT_ADD_RULE")
			continue
		}
		if !inAdd {
			continue
		}
		// " | 00010  04 00 00 00 02 00 ...  ascii |"
		l := strings.TrimSpace(line)
		if !strings.HasPrefix(l, "|") || len(l) < 60 {
			continue
		}
		hexPart := strings.ReplaceAll(l[9:58], " ", "")
		b, err := hex.DecodeString(hexPart)
		if err != nil {
			return nil, err
		}
		msg = append(msg, b...)
	}
	if msg == nil {
		return nil, nil
	}
	if len(msg) < 16 {
		return nil, errors.New("short netlink message in strace output")
	}
	// libaudit sets nlmsg_len to NLMSG_SPACE (padded to 4 bytes), so the
	// rule ends where its own buflen says: 1040 bytes of header + buflen.
	const ruleHeader = 1040
	payload := msg[16:]
	if len(payload) < ruleHeader {
		return nil, errors.New("short audit_rule_data in strace output")
	}
	n := ruleHeader + int(binary.NativeEndian.Uint32(payload[ruleHeader-4:]))
	if n > len(payload) {
		return nil, errors.New("audit_rule_data buflen overruns the message")
	}
	return payload[:n], nil
}
