package auditrec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseUserMessageFlattensMsgAndDecodes(t *testing.T) {
	r, err := ParseLogLine(`type=USER_LOGIN msg=audit(1700000101.013:902): pid=4410 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=login acct=28696E76616C6964207573657229 exe="/usr/lib/openssh/sshd-session" hostname=? addr=2001:db8::66 terminal=sshd res=failed'` + "\x1dUID=\"root\" AUID=\"unset\"")
	require.NoError(t, err)
	assert.Equal(t, TypeUserLogin, r.Type)
	assert.Equal(t, Stamp{Sec: 1700000101, Milli: 13, Serial: 902}, r.Stamp)
	assert.Equal(t, "(invalid user)", r.Get("acct"), "bare acct is hex")
	assert.Equal(t, "/usr/lib/openssh/sshd-session", r.Get("exe"))
	assert.Equal(t, "2001:db8::66", r.Get("addr"))
	assert.Equal(t, "failed", r.Get("res"))
	assert.Equal(t, "4410", r.Get("pid"))
	assert.Equal(t, "?", r.Get("hostname"))
	assert.Equal(t, "", r.Get("UID"), "auditd's enriched fields are not the kernel's record")
	raw, ok := r.Raw("acct")
	assert.True(t, ok)
	assert.Equal(t, "28696E76616C6964207573657229", raw)
}

func TestParseMulticastFormAndKeys(t *testing.T) {
	r, err := Parse(TypeSyscall, `audit(1700000501.200:3002): arch=c000003e syscall=59 success=no exit=-13 comm="bash" exe="/usr/bin/bash" key=707269765F65736301657865635F7375`)
	require.NoError(t, err)
	assert.Equal(t, []string{"priv_esc", "exec_su"}, r.Keys())
	assert.Equal(t, "-13", r.Get("exit"))

	r, err = Parse(TypeSyscall, `audit(1700000501.200:3003): arch=c000003e syscall=2 key=(null)`)
	require.NoError(t, err)
	assert.Nil(t, r.Keys())

	r, err = Parse(TypeProctitle, `audit(1700000501.200:3003): proctitle=7375646F006964`)
	require.NoError(t, err)
	assert.Equal(t, "sudo id", Cmdline(r.Get("proctitle")))
	assert.Equal(t, "1700000501.200:3003", r.Stamp.String())
	assert.Equal(t, time.Unix(1700000501, 200e6), r.Stamp.Time())
}

func TestQuotedHexLookingValueIsLiteral(t *testing.T) {
	r, err := Parse(TypePath, `audit(1.000:1): item=0 name="CAFE" nametype=NORMAL`)
	require.NoError(t, err)
	assert.Equal(t, "CAFE", r.Get("name"))
	r, err = Parse(TypePath, `audit(1.000:1): item=0 name=CAFE nametype=NORMAL`)
	require.NoError(t, err)
	assert.Equal(t, "\xca\xfe", r.Get("name"))
}

func TestParseErrorsNameTheProblem(t *testing.T) {
	for in, want := range map[string]string{
		`type=USER_AUTH audit(1.0:1): x=1`:         "no msg=",
		`type=NOPE msg=audit(1.000:1): x=1`:        `unknown record type "NOPE"`,
		`type=USER_AUTH msg=audit(1.000): x=1`:     `bad stamp "1.000"`,
		`type=USER_AUTH msg=audit(1.000:1 x=1`:     "unterminated",
		`msg=audit(1.000:1): x=1`:                  "no type=",
		`type=USER_AUTH msg=audit(x.000:1): pid=1`: `bad stamp "x.000:1"`,
	} {
		_, err := ParseLogLine(in)
		require.ErrorIs(t, err, ErrMalformed, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestTypeByNameUnknownNumber(t *testing.T) {
	n, ok := TypeByName("UNKNOWN[1334]")
	assert.True(t, ok)
	assert.Equal(t, uint16(1334), n)
}

func rec(t *testing.T, typ uint16, text string) *Record {
	r, err := Parse(typ, text)
	require.NoError(t, err)
	return &r
}

func TestAssemblerGroupsByStampUntilEOE(t *testing.T) {
	var got []*Event
	a := NewAssembler(func(e *Event) { got = append(got, e) })
	t0 := time.Unix(1000, 0)
	a.Push(rec(t, TypeSyscall, `audit(1.000:10): syscall=257 key="identity"`), t0)
	a.Push(rec(t, TypeSyscall, `audit(1.000:11): syscall=59`), t0) // interleaved second event
	a.Push(rec(t, TypePath, `audit(1.000:10): item=0 name="/etc/shadow"`), t0)
	a.Push(rec(t, TypeUserAuth, `audit(1.001:12): pid=1 msg='res=failed'`), t0) // standalone
	require.Len(t, got, 1)
	assert.Equal(t, uint64(12), got[0].Stamp.Serial)
	a.Push(rec(t, TypeEOE, `audit(1.000:10): `), t0)
	require.Len(t, got, 2)
	assert.True(t, got[1].Complete)
	assert.Len(t, got[1].Records, 2)
	assert.Equal(t, []string{"identity"}, got[1].Keys())
	assert.Equal(t, 1, a.Pending())

	// The second event never gets its EOE: the timeout flushes it, marked incomplete.
	a.Expire(t0.Add(DefaultTimeout - time.Millisecond))
	require.Len(t, got, 2)
	a.Expire(t0.Add(DefaultTimeout))
	require.Len(t, got, 3)
	assert.False(t, got[2].Complete)
	assert.Equal(t, 0, a.Pending())
	assert.Empty(t, a.order, "flushed stamps do not pile up")

	// An EOE whose records were lost emits nothing.
	a.Push(rec(t, TypeEOE, `audit(1.000:99): `), t0)
	assert.Len(t, got, 3)
}

func TestAssemblerBoundsPending(t *testing.T) {
	var got []*Event
	a := NewAssembler(func(e *Event) { got = append(got, e) })
	a.MaxPending = 2
	t0 := time.Unix(1000, 0)
	a.Push(rec(t, TypeSyscall, `audit(1.000:1): syscall=1`), t0)
	a.Push(rec(t, TypeSyscall, `audit(1.000:2): syscall=1`), t0)
	a.Push(rec(t, TypeSyscall, `audit(1.000:3): syscall=1`), t0)
	require.Len(t, got, 1)
	assert.Equal(t, uint64(1), got[0].Stamp.Serial, "the oldest goes first")
	a.Flush()
	assert.Len(t, got, 3)
}

func TestKeysFastPathAgreesWithFullParse(t *testing.T) {
	for _, body := range []string{
		`arch=c000003e syscall=257 comm="vi" key="identity"`,
		`arch=c000003e syscall=59 key=707269765F65736301657865635F7375`,
		`arch=c000003e syscall=59 key=(null)`,
		`arch=c000003e syscall=59 comm="x"`,
		`key="first" arch=1`,
		`arch=c000003e key="identity"` + "\x1dARCH=x86_64 KEY=\"x\"",
	} {
		fast, err := Parse(TypeSyscall, "audit(1.000:1): "+body)
		require.NoError(t, err)
		full := fast
		full.split()
		assert.Equal(t, full.Keys(), fast.Keys(), body)
		assert.False(t, fast.parsed, "the fast path did not split")
	}
}
