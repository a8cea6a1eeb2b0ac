#!/bin/bash
# The Fly scenarios' checker. flyinit (the stand-in for Fly's init, PID 1, no systemd) starts
# it before the entrypoint, as an operator's `fly ssh console` session would run next to the
# app, and powers the VM off once both have exited. Same protocol as check.sh on /dev/ttyS1:
# CHECK name PASS|FAIL|SKIP detail, FIGURE, HOST request (the harness answers HOST-DONE), DONE.
#
#   fly         the image's entrypoint `harden boot -- fly-app.sh` with a good policy
#   fly-broken  the same with a policy that does not load: fail closed
set -u
export LC_ALL=C PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
RESULTS=/run/harden-results
LOG=/run/flyinit/app.log # the entrypoint's stdout and stderr: harden's JSON records, the app's lines
A=/run/app
mkdir -p "$RESULTS"
# MESSAGE_IDs (internal/changelog).
RUN_ID=c4a7e2f1083b4d6c95e1a2b3d4f5e6a7
FINDING_ID=2d6e0c9a4b8f4e1d9c3a7b5e6f1d2c83
CHANGE_ID=8f1b5b2c6a0e4d57a3c1e9d2b7f40a61
FAIL_CLOSED_ID=5b9d1f3e7a2c4e6081b3d5f7a9c1e3f5
BLOCKED_ID=a9d4024d7501a2e3f7657013d922e8f6
START_ID=384e4f528a8df47d5a3eb63d3766540f
RESTART_ID=bbeee2f7acfed6ce21c8b46b38159c9a
STOP_ID=c90b99bf157d129972e040984b649c2d
ORPHAN_ID=1fc6e0906f95921bb39cfc2502fe7fef
VIRUS_ID=a85bfee7f2114a0d990ee0da66c89ae3

stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3<>/dev/ttyS1
say() { printf '%s\n' "$*" >&3; }
check() { # name PASS|FAIL|SKIP detail...
	local name=$1 st=$2
	shift 2
	say "CHECK $name $st $*"
}
figure() { say "FIGURE $1 $2"; }
host() { # request args: the host probes from outside, then answers HOST-DONE
	say "HOST $*"
	local line wait=${HOST_WAIT:-120}
	while read -r -t "$wait" line <&3; do
		[ "${line%$'\r'}" = HOST-DONE ] && return 0
	done
	check host-answer FAIL "no HOST-DONE from the harness within $wait s"
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_for SECONDS COMMAND...: poll every 0.2 s until the command succeeds.
wait_for() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.2
	done
}
exists() { [ -e "$1" ]; }
# records [jq filter]: harden's JSON lines from the entrypoint's output.
records() { grep '^{' "$LOG" 2>/dev/null | jq -c "${1:-.}" 2>/dev/null; }
by_id() { records "select(.MESSAGE_ID == \"$1\")${2:+ | $2}"; }
ppid_of() { awk '/^PPid:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
tail_log() { tail -n "${1:-5}" "$LOG" 2>/dev/null | cut -c1-300 | tr '\n' '|'; }

scenario=$(cat /etc/harden-test/scenario 2>/dev/null)
say "HELLO scenario=$scenario boot=1"
image=$(cat /etc/harden-test/image 2>/dev/null)
os=$(. /etc/os-release && echo "$ID-$VERSION_ID")
if [ "$os" = "$image" ]; then
	check image-os PASS "$(. /etc/os-release && echo "$PRETTY_NAME"); kernel $(uname -r); $(sshd -V 2>&1 | head -1)"
else
	check image-os FAIL "image $image, but /etc/os-release says $os"
fi

# Listeners before harden runs, on the allowed port (8080) and on one the policy does not
# open (9090): what the host reaches before the app is up is the firewall's doing.
mkdir -p /run/www-pre && echo harden-test-pre >/run/www-pre/index.html
busybox httpd -f -p 8080 -h /run/www-pre &
pre1=$!
busybox httpd -f -p 9090 -h /run/www-pre &
pre2=$!
# An image must not carry SSH host keys (every machine would share them): harden boot makes
# this machine's own before sshd starts (boot.sshd: true in the fly policy).
rm -f /etc/ssh/ssh_host_*
t0=$(now_ms)
touch /run/flyinit/checker-ready

if [ "$(cat /proc/1/comm)" = flyinit ] && ! pgrep -x systemd >/dev/null && ! systemctl is-system-running >/dev/null 2>&1; then
	check fly-no-systemd PASS "PID 1 is $(cat /proc/1/comm); no systemd, no D-Bus ($(systemctl is-system-running 2>&1 | head -1))"
else
	check fly-no-systemd FAIL "PID 1 is $(cat /proc/1/comm); systemd: $(pgrep -x systemd)"
fi

finish() {
	cp -a "$LOG" "$RESULTS/" 2>/dev/null
	ps -eo pid,ppid,stat,comm,args >"$RESULTS/ps.txt" 2>&1
	nft list ruleset >"$RESULTS/nft.txt" 2>&1
	cp -a /var/lib/harden/last-run.json "$RESULTS/" 2>/dev/null
	cp -a /run/app "$RESULTS/app" 2>/dev/null
	tar -cf /dev/vdb -C "$RESULTS" . 2>/dev/null
	sync
	say DONE
	exit 0
}

# ---------------------------------------------------------------------------------------
if [ "$scenario" = fly-broken ]; then
	if wait_for 600 exists /run/flyinit/exit; then
		st=$(cat /run/flyinit/exit)
		figure fly-broken-exit-ms $(($(now_ms) - t0))
		if [ "$st" = "exit 1" ]; then
			check fly-broken-exit PASS "harden boot exited non-zero ($st) on a policy that does not load"
		else
			check fly-broken-exit FAIL "harden boot: $st (want exit 1); $(tail_log)"
		fi
	else
		check fly-broken-exit FAIL "harden boot did not exit within 600 s; $(tail_log)"
	fi
	if [ ! -e "$A/started" ]; then
		check fly-broken-app-not-started PASS "the app never started"
	else
		check fly-broken-app-not-started FAIL "the app started"
	fi
	blocked=$(by_id $BLOCKED_ID .MESSAGE | head -1)
	if [ -n "$(by_id $FAIL_CLOSED_ID)" ] && [ -n "$blocked" ]; then
		check fly-broken-records PASS "fail-closed and app-not-started records on stdout/stderr: ${blocked:0:300}"
	else
		check fly-broken-records FAIL "fail-closed: $(by_id $FAIL_CLOSED_ID | wc -l), blocked: $(by_id $BLOCKED_ID | wc -l); $(tail_log)"
	fi
	nft list table inet harden >"$RESULTS/nft-harden.txt" 2>&1
	if grep -q 'comment "allow ssh"' "$RESULTS/nft-harden.txt" && ! grep -q 8080 "$RESULTS/nft-harden.txt"; then
		check fly-broken-default-firewall PASS "table inet harden is the embedded default's (ssh from the private network only, no 8080)"
	else
		check fly-broken-default-firewall FAIL "$(head -3 "$RESULTS/nft-harden.txt" | tr '\n' '|')"
	fi
	host fly-probe phase=broken
	finish
fi

# ---------------------------------------------------------------------------------------
# fly: the app starts once harden boot has applied the policy and started the helpers.
if wait_for 600 exists "$A/started"; then
	figure fly-app-start-ms $(($(now_ms) - t0))
	check fly-app-started PASS "harden boot started the app $(($(now_ms) - t0)) ms after the checker"
else
	check fly-app-started FAIL "no app within 600 s; exit: $(cat /run/flyinit/exit 2>/dev/null); $(tail_log 8)"
	finish
fi
hp=$(cat /run/flyinit/entrypoint.pid)
if [ "$(cat "$A/ppid")" = "$hp" ] && grep -q "^FLY_PRIVATE_IP=fdaa:0:1:a7b:1::2$" "$A/env" && grep -q '^FLY_REGION=ams$' "$A/env"; then
	check fly-app-child PASS "the app is harden boot's child (pid $hp) with Fly's environment ($(tr '\n' ' ' <"$A/env" | cut -c1-200))"
else
	check fly-app-child FAIL "app ppid $(cat "$A/ppid"), harden boot $hp; env: $(tr '\n' ' ' <"$A/env")"
fi

# The app left a process behind at its start (its parent exited at once): the kernel gave it
# to harden boot, the subreaper, not to PID 1.
opid=$(cat "$A/orphan.pid")
oppid=$(ppid_of "$opid")

# From the host, before the app listens: the allowed port answers, the other gives nothing.
host fly-probe phase=before
kill "$pre1" "$pre2" 2>/dev/null
wait "$pre1" "$pre2" 2>/dev/null
touch "$A/go"
wait_for 30 exists "$A/listening" || check fly-app-listening FAIL "the app did not listen"
sleep 1
host fly-probe phase=after

# The helpers run under harden boot, and nothing else of the policy's is missing.
supervised() {
	local p ok=0
	for p in clamd clamonacc auditd sshd; do
		[ "$(ppid_of "$(pgrep -x $p | head -1)")" = "$hp" ] || ok=1
	done
	[ "$(ppid_of "$(pgrep -f '^/usr/local/sbin/harden watch' | head -1)")" = "$hp" ] || ok=1
	return $ok
}
if wait_for 180 supervised; then
	check fly-supervised PASS "clamd $(pgrep -x clamd), clamonacc $(pgrep -x clamonacc), auditd $(pgrep -x auditd), sshd $(pgrep -x sshd), harden watch $(pgrep -f '^/usr/local/sbin/harden watch') are children of harden boot ($hp)"
else
	check fly-supervised FAIL "$(ps -eo pid,ppid,comm | awk -v hp="$hp" '$2 == hp' | tr '\n' '|'); $(tail_log)"
fi
figure fly-helpers-up-ms $(($(now_ms) - t0))
# harden boot's own memory while it supervises (the steps' work is done by then).
figure fly-harden-boot-rss-kb "$(awk '/^VmRSS:/ {print $2}' "/proc/$hp/status")"
supervised_msg=$(by_id $FINDING_ID 'select(.HARDEN_FINDING == "services.boot-supervised") | .MESSAGE' | head -1)
if [ -n "$supervised_msg" ]; then
	check fly-services-step PASS "$supervised_msg"
else
	check fly-services-step FAIL "no services.boot-supervised finding"
fi

keys=$(by_id $CHANGE_ID 'select(.HARDEN_OBJECT == "/etc/ssh/ssh_host_*_key") | .MESSAGE' | head -1)
if [ -n "$keys" ] && ls /etc/ssh/ssh_host_ed25519_key >/dev/null 2>&1; then
	check fly-sshd-host-keys PASS "the image had no host keys; harden boot made this machine's before sshd: $keys"
else
	check fly-sshd-host-keys FAIL "record: '$keys'; $(ls /etc/ssh/ | tr '\n' ' ')"
fi

# Every record harden wrote is one JSON object per line with the journal's fields.
bad=$(grep '^{' "$LOG" | while IFS= read -r l; do jq -e 'has("MESSAGE") and has("PRIORITY") and has("SYSLOG_IDENTIFIER")' <<<"$l" >/dev/null 2>&1 || echo x; done | wc -l)
nrec=$(grep -c '^{' "$LOG")
runs=$(by_id $RUN_ID | wc -l)
changes=$(by_id $CHANGE_ID 'select(.HARDEN_RUN_ID != null and .HARDEN_STEP != null and .HARDEN_OBJECT != null)' | wc -l)
starts=$(by_id $START_ID .HARDEN_SERVICE | tr -d '"' | sort -u | tr '\n' ' ')
if [ "$bad" = 0 ] && [ "$runs" = 1 ] && [ "$changes" -gt 0 ] && [[ "$starts" == *app* ]] && [[ "$starts" == *clamd* ]] && [[ "$starts" == *watch* ]]; then
	check fly-json-records PASS "$nrec JSON lines, all journal-shaped: 1 run summary, $changes change records, starts of: $starts"
else
	check fly-json-records FAIL "$bad malformed of $nrec; runs $runs; changes $changes; starts: $starts"
fi

# private_networks: [auto]: the /48 of the 6PN address; a shell without FLY_PRIVATE_IP (as a
# systemd unit or the drift check would run) builds the same table.
nft list table inet harden >"$RESULTS/nft-harden.txt" 2>&1
if grep -q 'fdaa:0:1::/48' "$RESULTS/nft-harden.txt"; then
	check fly-firewall-6pn PASS "private6 = fdaa:0:1::/48, the org's /48 of FLY_PRIVATE_IP"
else
	check fly-firewall-6pn FAIL "$(grep -A4 'set private6' "$RESULTS/nft-harden.txt" | tr '\n' ' ')"
fi
env -u FLY_PRIVATE_IP harden apply --dry-run --only firewall --detailed-exitcode >"$RESULTS/shell-dry-run.txt" 2>&1
rc=$?
if [ $rc = 0 ]; then
	check fly-firewall-shell-same PASS "harden apply --dry-run --only firewall without FLY_PRIVATE_IP: nothing to change (the /48 from eth0's fdaa:: address)"
else
	check fly-firewall-shell-same FAIL "exit $rc: $(tail -5 "$RESULTS/shell-dry-run.txt" | tr '\n' '|')"
fi

# fly ssh console: Fly's SSH server on the 6PN address's tcp/22 stays reachable from the
# organisation's /48 (a WireGuard peer), and from nowhere else.
peer() { # name address: a namespace behind a veth, like a WireGuard peer of the 6PN
	ip netns add "$1"
	ip link add "v$1" type veth peer name eth0 netns "$1"
	ip link set "v$1" up
	# Neighbour discovery only answers for the receiving interface's own addresses: the
	# peer reaches the 6PN address through this side's link-local address.
	ip -6 addr add fe80::1/64 dev "v$1" nodad
	ip -6 route add "$2/128" dev "v$1"
	ip -n "$1" link set lo up
	ip -n "$1" link set eth0 up
	ip -n "$1" -6 addr add "$2/128" dev eth0 nodad
	ip -n "$1" -6 route add fdaa:0:1:a7b:1::2/128 via fe80::1 dev eth0
}
banner() { ip netns exec "$1" timeout 8 bash -c 'exec 3<>/dev/tcp/fdaa:0:1:a7b:1::2/22 && head -c 40 <&3' 2>/dev/null | head -1 | tr -d '\r'; }
peer orgpeer fdaa:0:1:beef::9
peer strangr fdaa:0:2:beef::9
sleep 2
org=$(banner orgpeer)
other=$(banner strangr)
if [[ "$org" == SSH-2.0-* ]] && [ -z "$other" ]; then
	check fly-ssh-console-6pn PASS "tcp/22 on the 6PN address answers a peer in the org's /48 ($org), nothing from another org's /48"
else
	check fly-ssh-console-6pn FAIL "org peer got '$org', other org got '$other'"
fi

# auditd under harden boot holds the kernel's audit pid; the rules are locked.
st=$(auditctl -s 2>&1)
apid=$(pgrep -x auditd | head -1)
if grep -q '^enabled 2' <<<"$st" && grep -q "^pid $apid\$" <<<"$st"; then
	check fly-auditd PASS "auditd ($apid) is the kernel's audit daemon; rules locked (enabled 2), $(auditctl -l | grep -c '^-') rules"
else
	check fly-auditd FAIL "$(tr '\n' ' ' <<<"$st")"
fi

# EICAR on an on-access path: blocked by clamonacc, alerted on stdout (and at the webhook).
printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >/tmp/eicar.com
cat /tmp/eicar.com >/dev/null 2>&1
eicar() { by_id $VIRUS_ID .MESSAGE | grep -q 'Harden.Test.EICAR'; }
if wait_for 90 eicar; then
	if [ -e /tmp/eicar.com ] && cat /tmp/eicar.com >/dev/null 2>&1; then
		check fly-clamav-eicar FAIL "alerted, but /tmp/eicar.com is still readable"
	else
		how="reading it is denied"
		[ -e /tmp/eicar.com ] || how="moved to /root/quarantine"
		check fly-clamav-eicar PASS "clamonacc blocked /tmp/eicar.com ($how); virus alert record on stdout: $(by_id $VIRUS_ID .MESSAGE | head -1)"
	fi
else
	check fly-clamav-eicar FAIL "no virus alert within 90 s; $(grep -i -m2 eicar "$LOG" | cut -c1-200 | tr '\n' '|')"
fi

# Alerts to the webhook: a write to /etc/shadow (the audit baseline's critical files), the
# EICAR detection, and a burst of failed SSH logins the harness makes from the host; it
# waits for all three at its receiver.
cp -a /etc/shadow /run/shadow.saved
echo '# harden-test write' >>/etc/shadow
cat /run/shadow.saved >/etc/shadow
HOST_WAIT=300 host alerts-fly

# The orphan was re-parented to harden boot, and reaped when it exited.
gone() { [ ! -e "/proc/$opid" ]; }
if [ "$oppid" = "$hp" ] && wait_for 60 gone && by_id $ORPHAN_ID .HARDEN_PID | grep -qx "\"$opid\""; then
	check fly-orphan-reaped PASS "orphan $opid of the app: re-parented to harden boot ($oppid), reaped when it exited (no zombie), record on stdout"
else
	check fly-orphan-reaped FAIL "orphan $opid: parent $oppid, state $(awk '/^State:/ {print $2}' /proc/$opid/status 2>/dev/null); records: $(by_id $ORPHAN_ID .HARDEN_PID | tr '\n' ' ')"
fi

# Killing clamd: harden boot starts it again (after its back-off) and says so.
old=$(pgrep -x clamd | head -1)
kill -9 "$old"
restarted() {
	local n
	n=$(pgrep -x clamd | head -1)
	[ -n "$n" ] && [ "$n" != "$old" ] && [ "$(ppid_of "$n")" = "$hp" ]
}
if wait_for 90 restarted && by_id $RESTART_ID .HARDEN_SERVICE | grep -qx '"clamd"'; then
	check fly-clamd-restarted PASS "clamd $old killed; harden boot restarted it as $(pgrep -x clamd | head -1): $(by_id $RESTART_ID 'select(.HARDEN_SERVICE == "clamd") | .MESSAGE' | head -1)"
else
	check fly-clamd-restarted FAIL "clamd now: $(pgrep -x clamd); restart records: $(by_id $RESTART_ID .MESSAGE | tr '\n' '|')"
fi

# Signals sent to harden boot reach the app.
kill -HUP "$hp"
kill -USR1 "$hp"
sigs() { grep -q HUP "$A/signals" 2>/dev/null && grep -q USR1 "$A/signals"; }
if wait_for 10 sigs; then
	check fly-signal-forwarding PASS "SIGHUP and SIGUSR1 to harden boot reached the app"
else
	check fly-signal-forwarding FAIL "the app got: $(cat "$A/signals" 2>/dev/null)"
fi

# A shutdown (fly machine stop: SIGTERM to PID 1, which sends it to the entrypoint): the app
# gets SIGTERM and exits 42, harden boot stops the helpers in order within boot.stop_timeout
# and exits 42, and flyinit powers the VM off (the harness sees QEMU exit).
helpers="$(pgrep -x clamd) $(pgrep -x clamonacc) $(pgrep -x auditd) $(pgrep -x sshd) $(pgrep -f '^/usr/local/sbin/harden watch')"
t1=$(now_ms)
kill -TERM 1
if wait_for 60 exists /run/flyinit/exit; then
	figure fly-shutdown-ms $(($(now_ms) - t1))
	st=$(cat /run/flyinit/exit)
	left=""
	for p in $helpers; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
	order=$(by_id $STOP_ID 'select(.HARDEN_SERVICE_EVENT == "stop") | .HARDEN_SERVICE' | tr -d '"' | tr '\n' ' ')
	stopped=$(records 'select(.MESSAGE | startswith("harden boot: helpers stopped")) | .MESSAGE' | head -1)
	# freshclam has no process unless its retry happens to run (no network here).
	if [ "$st" = "exit 42" ] && grep -q TERM "$A/signals" && [ -z "$left" ] &&
		[[ "$order" =~ ^sshd\ clamonacc\ clamd\ (freshclam\ )?auditd\ watch\ $ ]]; then
		check fly-shutdown PASS "app got SIGTERM; harden boot exited with the app's status ($st); helpers stopped in order: $order; $stopped"
	else
		check fly-shutdown FAIL "entrypoint $st; app signals: $(tr '\n' ' ' <"$A/signals"); left running:$left; stop order: $order; $stopped"
	fi
else
	check fly-shutdown FAIL "harden boot did not exit within 60 s of SIGTERM; $(tail_log)"
fi
finish
