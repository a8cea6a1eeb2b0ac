#!/bin/bash
# Guest-side checker of the integration suite. harden-check.service runs it once the boot has
# settled. It talks to the host harness over the second serial port (/dev/ttyS1):
#
#   guest -> host   HELLO scenario=<s> boot=<n>                 a boot has begun
#                   CHECK <name> PASS|FAIL|SKIP <detail>     one line per check
#                   FIGURE <name> <value>                    a measured number
#                   HOST <request> <args>                    the host probes from outside, then
#   host -> guest   HOST-DONE                                answers so the guest carries on
#   guest -> host   DONE                                     the guest is powering off
#
# The scenario (baked | broken | cloud-init) is in /etc/harden-test/scenario, the image
# (debian-12 | ubuntu-26.04) in /etc/harden-test/image. The host holds the list of checks each
# scenario must report on each image (suite_test.go): a check missing from this script's
# output, or a SKIP that is not on the host's allow-list, fails the scenario. So a check here
# never SKIPs for something that should be there: every harden step is in the binary.
set -u
export LC_ALL=C PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
POLICY_CHANGE_ID=8f1b5b2c6a0e4d57a3c1e9d2b7f40a61
FAIL_CLOSED_ID=5b9d1f3e7a2c4e6081b3d5f7a9c1e3f5
# The virus alert's MESSAGE_ID (internal/changelog: MsgAlertVirus; one id per alert kind).
ALERT_ID=a85bfee7f2114a0d990ee0da66c89ae3
RESULTS=/run/harden-results
STATE=/var/lib/harden-test
mkdir -p "$RESULTS" "$STATE"

stty -F /dev/ttyS1 raw -echo 2>/dev/null
exec 3<>/dev/ttyS1
say() { printf '%s\n' "$*" >&3; }
check() { # name PASS|FAIL|SKIP detail...
	local name=$1 st=$2
	shift 2
	say "CHECK $name $st $*"
}
figure() { say "FIGURE $1 $2"; }
# host REQUEST ARGS: ask the host to probe from outside and wait for its answer
# (HOST_WAIT seconds, default 120).
host() {
	say "HOST $*"
	local line wait=${HOST_WAIT:-120}
	while read -r -t "$wait" line <&3; do
		[ "${line%$'\r'}" = HOST-DONE ] && return 0
	done
	check host-answer FAIL "no HOST-DONE from the harness within $wait s"
}

scenario=$(cat /etc/harden-test/scenario 2>/dev/null || echo baked)
image=$(cat /etc/harden-test/image 2>/dev/null || echo unknown)
boot=1
[ -e "$STATE/boot1-done" ] && boot=2
say "HELLO scenario=$scenario image=$image boot=$boot"

# Wait for the boot to settle (units failing is for the checks to judge, not a reason to hang).
state=$(timeout 300 systemctl is-system-running --wait 2>/dev/null)
say "INFO system state: ${state:-timeout}; failed units: $(systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
figure boot-settled-ms $(($(cut -d. -f1 /proc/uptime) * 1000))

prop() { systemctl show -P "$2" "$1" 2>/dev/null; }
# usec_ms MONOTONIC_USEC: milliseconds for the figures.
usec_ms() { echo $(($1 / 1000)); }

REPORT=/var/lib/harden/last-run.json

# The image is the one the host built for this scenario: /etc/os-release against the recipe's
# name (ubuntu-26.04 -> ID ubuntu, VERSION_ID 26.04).
check_image_os() {
	local id ver pretty
	id=$(. /etc/os-release && echo "$ID")
	ver=$(. /etc/os-release && echo "$VERSION_ID")
	pretty=$(. /etc/os-release && echo "$PRETTY_NAME")
	if [ "$id-$ver" = "$image" ]; then
		check image-os PASS "$pretty; kernel $(uname -r); systemd $(systemctl --version | awk 'NR==1 {print $2}'); $(sshd -V 2>&1 | head -1)"
	else
		check image-os FAIL "image $image, but /etc/os-release says $id $ver ($pretty)"
	fi
}
check_image_os

unit_result() { echo "$(prop "$1" Result)/$(prop "$1" ExecMainStatus)"; }

unit_duration_ms() { # a oneshot's ExecStart run time
	local s e
	s=$(prop "$1" ExecMainStartTimestampMonotonic)
	e=$(prop "$1" ExecMainExitTimestampMonotonic)
	[ -n "$s" ] && [ -n "$e" ] && [ "$e" -gt 0 ] && echo $(((e - s) / 1000))
}

check_harden_service() { # expected Result
	local r
	r=$(unit_result harden.service)
	if [ "$r" = "success/0" ]; then
		check harden-service PASS "harden.service $r"
	else
		check harden-service FAIL "harden.service $r: $(journalctl -b -u harden.service -o cat | tail -5 | tr '\n' '|')"
	fi
	figure harden-service-ms "$(unit_duration_ms harden.service)"
}

check_report() {
	if jq -e '.run_id != "" and (.steps | type == "array") and (.status | type == "string")' "$REPORT" >/dev/null 2>&1; then
		check last-run-json PASS "status $(jq -r .status "$REPORT"), steps: $(jq -r '[.steps[].name] | join(",")' "$REPORT")"
	else
		check last-run-json FAIL "$REPORT missing or not a harden report"
	fi
}

check_firewall_order() {
	local r fw_exit pre
	r=$(unit_result harden-firewall.service)
	fw_exit=$(prop harden-firewall.service ExecMainExitTimestampMonotonic)
	pre=$(prop network-pre.target ActiveEnterTimestampMonotonic)
	if [ "$r" != success/0 ]; then
		check firewall-before-network FAIL "harden-firewall.service $r"
	elif [ -n "$fw_exit" ] && [ -n "$pre" ] && [ "$pre" -gt 0 ] && [ "$fw_exit" -le "$pre" ]; then
		check firewall-before-network PASS "firewall done at $(usec_ms "$fw_exit") ms, network-pre.target at $(usec_ms "$pre") ms"
	else
		check firewall-before-network FAIL "firewall done at ${fw_exit} us, network-pre.target at ${pre} us"
	fi
	# The lead is negative when the firewall came late: a figure either way.
	[ -n "$fw_exit" ] && [ -n "$pre" ] && [ "$pre" -gt 0 ] && figure firewall-lead-ms $(((pre - fw_exit) / 1000))
	figure harden-firewall-ms "$(unit_duration_ms harden-firewall.service)"
	if nft list table inet harden >"$RESULTS/nft-harden.txt" 2>&1; then
		check nft-table PASS "table inet harden: $(grep -c . "$RESULTS/nft-harden.txt") lines"
	else
		check nft-table FAIL "$(head -1 "$RESULTS/nft-harden.txt")"
	fi
}

# Reference figures of the same boot, beside harden's own (harden-firewall-ms,
# harden-service-ms-boot<n>, converged-apply-ms): `nft -f` of harden's own ruleset into a fresh
# network namespace, and `systemctl list-unit-files`. TCG is 10-20x slower than hardware and
# its speed varies from run to run; the ratios hold where the absolute times do not.
reference_figures() {
	local start end ruleset=$RESULTS/harden-ruleset.nft
	if [ -s "$RESULTS/nft-harden.txt" ]; then
		{ echo "table inet harden"; echo "delete table inet harden"; cat "$RESULTS/nft-harden.txt"; } >"$ruleset"
		start=$(date +%s%N)
		if unshare -n nft -f "$ruleset" 2>"$RESULTS/nft-f.err"; then
			end=$(date +%s%N)
			figure nft-f-harden-ruleset-ms $(((end - start) / 1000000))
		else
			say "INFO nft -f of harden's ruleset failed: $(head -1 "$RESULTS/nft-f.err")"
		fi
	fi
	start=$(date +%s%N)
	systemctl list-unit-files >/dev/null 2>&1
	end=$(date +%s%N)
	figure systemctl-list-unit-files-ms $(((end - start) / 1000000))
}

# Findings the test image causes on purpose; any other critical finding fails.
EXPECTED_CRITICAL="clamav.database-missing"
check_findings() {
	local other
	other=$(jq -r '.steps[].findings // [] | .[] | select(.severity == "critical") | .id' "$REPORT" 2>/dev/null |
		grep -vxF "$EXPECTED_CRITICAL" | sort -u | tr '\n' ' ')
	if [ -z "$other" ]; then
		check findings PASS "no critical finding but the expected ($EXPECTED_CRITICAL: the test image has no real signatures)"
	else
		check findings FAIL "unexpected critical findings: $other"
	fi
}

check_converged() {
	local start end rc
	start=$(date +%s%N)
	harden apply --detailed-exitcode >"$RESULTS/second-apply.txt" 2>&1
	rc=$?
	end=$(date +%s%N)
	figure converged-apply-ms $(((end - start) / 1000000))
	if [ $rc = 0 ]; then
		check converged PASS "second harden apply --detailed-exitcode exited 0"
	else
		check converged FAIL "second apply exited $rc: $(tail -5 "$RESULTS/second-apply.txt" | tr '\n' '|')"
	fi
}

check_journal() {
	local n missing
	journalctl -b -o json "MESSAGE_ID=$POLICY_CHANGE_ID" >"$RESULTS/changes.json" 2>/dev/null
	n=$(grep -c . "$RESULTS/changes.json")
	if [ "$n" = 0 ]; then
		# A first boot of an unhardened image always changes things: no record is a failure
		# whatever the report says.
		check journal-records FAIL "no change record in the journal; the report lists $(jq -r '[.steps[].changes // [] | length] | add' "$REPORT" 2>/dev/null) changes"
		return
	fi
	missing=$(jq -r 'select((.HARDEN_RUN_ID // "") == "" or (.HARDEN_STEP // "") == "" or (.HARDEN_OBJECT // "") == "" or (.HARDEN_ACTION // "") == "") | .MESSAGE' "$RESULTS/changes.json" | head -3)
	if [ -z "$missing" ]; then
		check journal-records PASS "$n change records, each with HARDEN_RUN_ID/STEP/OBJECT/ACTION"
	else
		check journal-records FAIL "records without HARDEN_* fields: $missing"
	fi
}

check_sshd() {
	local t
	# Keywords compared case-insensitively: OpenSSH 10.4+ prints some capitalised.
	t=$(sshd -T 2>&1 | awk '{ $1 = tolower($1); print }')
	if grep -qix 'permitrootlogin no' <<<"$t" && grep -qix 'passwordauthentication no' <<<"$t"; then
		check sshd-effective PASS "sshd -T: permitrootlogin no, passwordauthentication no"
	else
		check sshd-effective FAIL "sshd -T: $(grep -E '^(permitrootlogin|passwordauthentication) ' <<<"$t" | tr '\n' ' ')"
	fi
	# The session baseline.
	local bad="" kv
	for kv in "x11forwarding no" "allowtcpforwarding no" "allowagentforwarding no" "permittunnel no" \
		"loglevel verbose" "kbdinteractiveauthentication no" "permitemptypasswords no" "clientalivecountmax 3"; do
		grep -qix "$kv" <<<"$t" || bad="$bad [$kv: $(grep -i "^${kv%% *} " <<<"$t")]"
	done
	if [ -z "$bad" ]; then
		check sshd-baseline PASS "no X11/agent/TCP forwarding, LogLevel VERBOSE, ClientAlive bounded"
	else
		check sshd-baseline FAIL "$bad"
	fi
	# The crypto baseline: nothing weak, and OpenSSH 10's post-quantum key exchange kept.
	local kex weak
	kex=$(awk '$1 == "kexalgorithms" { print $2 }' <<<"$t")
	weak=$(grep -E '^(kexalgorithms|ciphers|macs|hostkeyalgorithms) ' <<<"$t" | tr ', ' '\n\n' | grep -E 'nistp|sha1|cbc|umac-64|^ssh-rsa$|ssh-dss|group14|group-exchange' | tr '\n' ' ')
	if [ -n "$weak" ]; then
		check sshd-crypto FAIL "weak algorithms offered: $weak"
	elif ssh -Q kex | grep -qx mlkem768x25519-sha256 && [ "${kex%%,*}" != mlkem768x25519-sha256 ]; then
		check sshd-crypto FAIL "this OpenSSH has mlkem768x25519-sha256 but kexalgorithms is $kex"
	else
		check sshd-crypto PASS "kexalgorithms $kex; no NIST curve, SHA-1, CBC or encrypt-and-MAC"
	fi
	# Socket activation (Ubuntu): ssh.socket is the listener and is never masked.
	if systemctl cat ssh.socket >/dev/null 2>&1; then
		local st en
		st=$(systemctl is-active ssh.socket)
		en=$(systemctl is-enabled ssh.socket 2>&1)
		if [ "$en" = masked ] || [ "$en" = masked-runtime ]; then
			check sshd-socket FAIL "ssh.socket is $en"
		elif systemctl is-enabled -q ssh.service 2>/dev/null || [ "$st" = active ]; then
			check sshd-socket PASS "ssh.socket $st/$en"
		else
			check sshd-socket FAIL "ssh.socket $st/$en and ssh.service not enabled: nothing listens"
		fi
	fi
	# systemd 256+: the generator's AF_VSOCK/AF_UNIX listeners bypass nftables; harden masks
	# the generator (an empty file) and no generated socket listens.
	if [ -e /usr/lib/systemd/system-generators/systemd-ssh-generator ]; then
		local mask=/etc/systemd/system-generators/systemd-ssh-generator states
		states=$(for u in sshd-vsock.socket sshd-unix-local.socket; do printf '%s=%s ' "$u" "$(systemctl is-active "$u" 2>/dev/null)"; done)
		if [ -f "$mask" ] && [ ! -s "$mask" ] && ! grep -q '=active' <<<"$states" && [ ! -S /run/ssh-unix-local/socket ]; then
			check sshd-generator PASS "systemd-ssh-generator masked; $states"
		else
			check sshd-generator FAIL "mask $(ls -l "$mask" 2>&1); $states; $(ls -l /run/ssh-unix-local/socket 2>&1)"
		fi
	fi
	# cloud-init's ssh_pwauth drop-in, when present, loses to harden's (first value wins).
	if [ -e /etc/ssh/sshd_config.d/50-cloud-init.conf ]; then
		if grep -qix 'passwordauthentication no' <<<"$t"; then
			check sshd-cloud-init PASS "50-cloud-init.conf ($(grep -i passwordauthentication /etc/ssh/sshd_config.d/50-cloud-init.conf | tr '\n' ' ')) does not win"
		else
			check sshd-cloud-init FAIL "50-cloud-init.conf wins: $(grep -i '^passwordauthentication' <<<"$t")"
		fi
	fi
}

check_audit() {
	local file=/etc/audit/rules.d/harden.rules kernel want
	auditctl -l >"$RESULTS/auditctl-l.txt" 2>&1
	kernel=$(grep -c '^-[aw]' "$RESULTS/auditctl-l.txt")
	want=$(grep -c '^-[aw]' "$file" 2>/dev/null)
	if ! systemctl is-active -q auditd.service; then
		check audit-rules FAIL "auditd is not running"
	elif [ "$kernel" -gt 0 ] && [ "$kernel" = "$want" ] && grep -q 'key=harden-test\|-k harden-test' "$RESULTS/auditctl-l.txt"; then
		check audit-rules PASS "auditd runs; kernel has the $kernel rules of $file, the policy's extra rule included"
	else
		check audit-rules FAIL "kernel $kernel rules, $file $want, extra rule: $(grep -c harden-test "$RESULTS/auditctl-l.txt")"
	fi
}

check_services() {
	local en act sys
	en=$(systemctl is-enabled harden-test-decoy.service 2>&1)
	act=$(systemctl is-active harden-test-decoy.service 2>&1)
	if [ "$en" = masked ] && [ "$act" != active ]; then
		check services-masked PASS "decoy unit not on the allowlist: $en, $act"
	else
		check services-masked FAIL "decoy unit: $en, $act"
	fi
	sys=$(systemctl is-system-running 2>&1)
	if [ "$sys" = running ] && systemctl is-active -q ssh.service dbus.service systemd-journald.service; then
		check system-running PASS "system running, ssh/dbus/journald active"
	else
		check system-running FAIL "system $sys; failed: $(systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
	fi
}

check_clamav() {
	local i
	if ! systemctl is-active -q clamav-daemon.service clamav-clamonacc.service; then
		check clamav-eicar FAIL "clamd $(systemctl is-active clamav-daemon.service), clamonacc $(systemctl is-active clamav-clamonacc.service)"
		return
	fi
	# Written from here the on-access scanner sees it (harden-check runs as root, not clamav).
	printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >/tmp/eicar.com
	cat /tmp/eicar.com >/dev/null 2>&1
	for i in $(seq 60); do
		if journalctl -b -o cat "MESSAGE_ID=$ALERT_ID" | grep -q 'Harden.Test.EICAR'; then
			# Prevention is on in the test policy: the file must not be readable any more,
			# either denied by fanotify or moved away by clamonacc --move.
			local how
			if [ -e /tmp/eicar.com ]; then
				if cat /tmp/eicar.com >/dev/null 2>&1; then
					check clamav-eicar FAIL "alerted after ${i}s, but /tmp/eicar.com is still readable (prevention off?)"
					return
				fi
				how="reading it is denied"
			else
				how="moved to $(ls /root/quarantine 2>/dev/null | head -1 | sed 's|^|/root/quarantine/|')"
			fi
			check clamav-eicar PASS "clamonacc detected /tmp/eicar.com and blocked it ($how); virus alert in the journal after ${i}s"
			return
		fi
		sleep 1
	done
	check clamav-eicar FAIL "no alert for /tmp/eicar.com within 60 s; clamonacc: $(journalctl -b -o cat | grep -m1 -i eicar)"
}

# Alerts: harden-watch must run (under its sandbox, on real systemd); a write to /etc/shadow
# here and a burst of failed SSH logins from the host (the harness does it on "HOST alerts")
# must each reach the harness's webhook receiver, which checks the HMAC signature.
check_alerts() {
	local i
	for i in $(seq 30); do
		systemctl is-active -q harden-watch.service && break
		sleep 1
	done
	if systemctl is-active -q harden-watch.service; then
		check watch-service PASS "harden-watch.service active (pid $(prop harden-watch.service MainPID), restarts $(prop harden-watch.service NRestarts))"
	else
		check watch-service FAIL "harden-watch.service $(systemctl is-active harden-watch.service): $(journalctl -b -u harden-watch.service -o cat | tail -5 | tr '\n' '|')"
	fi
	# A real write, content restored: append a line, then write the saved content back in
	# place (same inode and mode). The baseline's -w /etc/shadow -p wa rule logs both opens.
	cp -a /etc/shadow "$STATE/shadow.saved"
	echo '# harden-test write' >>/etc/shadow
	cat "$STATE/shadow.saved" >/etc/shadow
	rm -f "$STATE/shadow.saved"
	# A failed privilege escalation: an unprivileged user tries su with a wrong password
	# (PAM audits USER_AUTH res=failed for /usr/bin/su; the baseline also keys the exec).
	echo 'not-the-root-password' | setpriv --reuid=65534 --regid=65534 --clear-groups su root -c true >/dev/null 2>&1
	# And sudo with a wrong password (-S reads it from stdin): PAM's USER_AUTH res=failed.
	echo 'not-the-password' | setpriv --reuid=65534 --regid=65534 --clear-groups sudo -S -u root true >/dev/null 2>&1
	HOST_WAIT=400 host alerts
	# What sshd really logged for the burst (the records harden watch counts), for the report
	# and for fixtures. In $STATE: the results disk of a reboot scenario holds the last boot's.
	grep -E '^type=USER_(AUTH|LOGIN|ERR|ACCT|START|END)' /var/log/audit/audit.log >"$STATE/audit-user-records.log" 2>/dev/null
	ausearch -i -m USER_AUTH,USER_LOGIN,USER_ERR --input-logs >"$STATE/ausearch-user.txt" 2>&1
	say "INFO audit USER_* records: $(wc -l <"$STATE/audit-user-records.log"); failed from 10.0.2.2: $(grep -c 'addr=10.0.2.2 .*res=failed' "$STATE/audit-user-records.log")"
	journalctl -b -u harden-watch.service -o short-monotonic >"$STATE/harden-watch-boot1.txt" 2>&1
}

# Ubuntu: AppArmor is on in the kernel and enforces its profiles, clamd's among them, and the
# running clamd is confined by it. (The clamav step's on-access paths outside the profile,
# /srv and friends, are the clamav step's checks; this one proves the ground they stand on.)
check_apparmor() {
	local prof=/usr/sbin/clamd pid label
	aa-status >"$RESULTS/aa-status.txt" 2>&1
	if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" != Y ]; then
		check apparmor-enforce FAIL "AppArmor is not enabled in the kernel (lsm: $(cat /sys/kernel/security/lsm 2>/dev/null))"
	elif grep -qxF "$prof (enforce)" /sys/kernel/security/apparmor/profiles 2>/dev/null; then
		check apparmor-enforce PASS "lsm $(cat /sys/kernel/security/lsm); $(grep -c '(enforce)' /sys/kernel/security/apparmor/profiles) profiles in enforce mode, $prof among them; apparmor.service $(systemctl is-active apparmor.service)"
	else
		check apparmor-enforce FAIL "$prof: $(grep -F "$prof " /sys/kernel/security/apparmor/profiles || echo 'not loaded'); apparmor.service $(systemctl is-active apparmor.service): $(journalctl -b -u apparmor.service -o cat | tail -3 | tr '\n' '|')"
	fi
	pid=$(prop clamav-daemon.service MainPID)
	if [ -z "$pid" ] || [ "$pid" = 0 ]; then
		check apparmor-clamd FAIL "clamd is not running: clamav-daemon.service $(systemctl is-active clamav-daemon.service)"
		return
	fi
	label=$(cat "/proc/$pid/attr/apparmor/current" 2>/dev/null || cat "/proc/$pid/attr/current" 2>/dev/null)
	if [ "$label" = "$prof (enforce)" ]; then
		check apparmor-clamd PASS "the running clamd (pid $pid) is confined: $label"
	else
		check apparmor-clamd FAIL "the running clamd (pid $pid) runs as '$label', want '$prof (enforce)'"
	fi
}

# Ubuntu server's sudo is sudo-rs: the priv-esc alert checks must meet sudo-rs, not sudo.ws.
check_sudo_rs() {
	local path ver
	path=$(readlink -f "$(command -v sudo)")
	ver=$(sudo --version 2>&1 | head -1)
	case "$ver" in
	*sudo-rs*) check sudo-rs PASS "sudo is $path: $ver" ;;
	*) check sudo-rs FAIL "sudo is $path: $ver" ;;
	esac
}

# A listener on a port the policy does not allow: the host must get no data from it.
start_decoy_listener() {
	mkdir -p /run/www && echo harden-test-decoy >/run/www/index.html
	busybox httpd -p 8080 -h /run/www
}

# save: the journal, the report and the captures so far onto the results disk. Called after
# the first checks too, so a boot that then runs out of time still leaves its journal.
save() {
	journalctl -b --no-pager -o short-monotonic >"$RESULTS/journal.txt" 2>&1
	# A reboot scenario's results disk holds its last boot's tar: keep the boot before too.
	[ "$boot" -gt 1 ] && journalctl -b -1 --no-pager -o short-monotonic >"$RESULTS/journal-boot$((boot - 1)).txt" 2>&1
	# AppArmor denials (clamd's profile and others), from the kernel's audit records.
	grep -a 'apparmor="DENIED"' /var/log/audit/audit.log >"$RESULTS/apparmor-denied.log" 2>/dev/null
	cp -a /var/lib/harden/last-run.json "$RESULTS/" 2>/dev/null
	systemctl list-units --all --plain --no-legend >"$RESULTS/units.txt" 2>&1
	cp -a "$STATE"/*.log "$STATE"/*.txt "$RESULTS/" 2>/dev/null
	tar -cf /dev/vdb -C "$RESULTS" . 2>/dev/null
	sync
}

case "$scenario:$boot" in
baked:1)
	if [ "$(. /etc/os-release && echo "$ID")" = ubuntu ]; then
		check_apparmor
		check_sudo_rs
	fi
	check_harden_service
	check_report
	check_findings
	check_firewall_order
	reference_figures
	check_sshd
	check_audit
	check_journal
	check_services
	save
	check_clamav
	check_converged
	start_decoy_listener
	host probe expect-ssh=open
	check_alerts
	save
	touch "$STATE/boot1-done"
	sync
	say "REBOOT"
	systemctl reboot
	exit 0
	;;
baked:2)
	check_harden_service
	changes=$(jq -r '[.steps[].changes // [] | length] | add // 0' "$REPORT" 2>/dev/null)
	if [ "$(jq -r .status "$REPORT")" = ok ] && [ "$changes" = 0 ]; then
		check reboot-no-changes PASS "second boot: harden.service changed nothing"
	else
		check reboot-no-changes FAIL "second boot: status $(jq -r .status "$REPORT"), $changes changes"
	fi
	check_firewall_order
	reference_figures
	;;
broken:1)
	# The policy on disk does not parse: the firewall falls back to the embedded default
	# (fail closed), the run exits 1 and the journal says why.
	r=$(unit_result harden-firewall.service)
	if [ "$r" = exit-code/1 ]; then
		check broken-exit-1 PASS "harden-firewall.service $r"
	else
		check broken-exit-1 FAIL "harden-firewall.service $r (want exit-code/1)"
	fi
	if journalctl -b -o cat "MESSAGE_ID=$FAIL_CLOSED_ID" | grep -q .; then
		check broken-journal PASS "$(journalctl -b -o cat "MESSAGE_ID=$FAIL_CLOSED_ID" | head -1)"
	else
		check broken-journal FAIL "no fail-closed record in the journal"
	fi
	if nft list table inet harden >/dev/null 2>&1; then
		check broken-default-firewall PASS "table inet harden loaded from the embedded default"
	else
		check broken-default-firewall FAIL "no table inet harden"
	fi
	start_decoy_listener
	host probe expect-ssh=closed
	# Dry run on this unhardened machine, with the good policy: it lists the changes and the
	# machine is unchanged afterwards.
	cp /etc/harden-test/good-policy.yaml /etc/harden/policy.yaml
	snapshot() {
		nft list ruleset 2>&1 | sed 's/counter packets [0-9]* bytes [0-9]*/counter/' 
		auditctl -l 2>&1
		auditctl -s 2>&1 | grep -v -E '^(lost|backlog) '
		sshd -T 2>&1
		systemctl list-unit-files --no-legend --plain 2>&1
		find /etc /usr/local -xdev -type f -newer /etc/harden-test/scenario -not -path '/etc/harden/policy.yaml' 2>&1
	}
	snapshot >"$RESULTS/before-dry-run.txt"
	harden apply --dry-run --detailed-exitcode >"$RESULTS/dry-run.txt" 2>&1
	rc=$?
	harden apply --dry-run --output json >"$RESULTS/dry-run.json" 2>/dev/null
	snapshot >"$RESULTS/after-dry-run.txt"
	# An unhardened machine needs changes from any step that changes things (the os step
	# only reports): the plan must list them, and no step may fail. The exit code is 2, or 1
	# when findings reach run.fail_on (this policy's fail_on is none).
	planned=$(jq '[.steps[].changes // [] | length] | add // 0' "$RESULTS/dry-run.json" 2>/dev/null)
	errors=$(jq -r '.steps[] | select((.error // "") != "") | .name' "$RESULTS/dry-run.json" 2>/dev/null | tr '\n' ' ')
	if [ -z "$errors" ] && [ "${planned:-0}" -gt 0 ] && [ $rc = 2 ] &&
		cmp -s "$RESULTS/before-dry-run.txt" "$RESULTS/after-dry-run.txt"; then
		check dry-run PASS "exit $rc, $planned planned changes, machine unchanged (nft, audit, sshd -T, unit files, /etc)"
	else
		check dry-run FAIL "exit $rc, $planned planned, step errors: ${errors:-none}; changed: $(diff "$RESULTS/before-dry-run.txt" "$RESULTS/after-dry-run.txt" | head -3 | tr '\n' '|')"
	fi
	;;
cloud-init:1)
	timeout 200 cloud-init status --wait >/dev/null 2>&1
	if cloud-init schema --config-file /var/lib/harden-seed/user-data >"$RESULTS/schema.txt" 2>&1; then
		check cloud-init-schema PASS "$(tail -1 "$RESULTS/schema.txt")"
	else
		check cloud-init-schema FAIL "$(tr '\n' '|' <"$RESULTS/schema.txt")"
	fi
	cloud-init status --long >"$RESULTS/cloud-init-status.txt" 2>&1
	cp /var/log/cloud-init-output.log "$RESULTS/" 2>/dev/null
	if grep -qx 'status: done' "$RESULTS/cloud-init-status.txt"; then
		check cloud-init-status PASS "cloud-init status: done (every module, runcmd included, succeeded)"
	else
		check cloud-init-status FAIL "$(tr '\n' '|' <"$RESULTS/cloud-init-status.txt" | cut -c1-400)"
	fi
	p=$(stat -c '%U %a' /etc/harden/policy.yaml 2>&1)
	if [ "$p" = "root 600" ]; then
		check cloud-init-policy PASS "/etc/harden/policy.yaml written, root 0600"
	else
		check cloud-init-policy FAIL "/etc/harden/policy.yaml: $p"
	fi
	if [ "$(systemctl is-enabled harden.service 2>&1)" = enabled ] && [ "$(systemctl is-enabled harden-firewall.service 2>&1)" = enabled ]; then
		check cloud-init-install PASS "harden install ran: units enabled"
	else
		check cloud-init-install FAIL "harden.service $(systemctl is-enabled harden.service 2>&1)"
	fi
	if [ -s "$REPORT" ] && jq -e .run_id "$REPORT" >/dev/null 2>&1; then
		check cloud-init-apply PASS "harden apply ran: report status $(jq -r .status "$REPORT")"
	else
		check cloud-init-apply FAIL "no report from harden apply: $(tail -3 /var/log/cloud-init-output.log | tr '\n' '|')"
	fi
	# The user-data has ssh_pwauth: true, so cloud-init wrote its own sshd drop-in turning
	# passwords on; harden's drop-in must win (the host's password probe below proves it).
	f=/etc/ssh/sshd_config.d/50-cloud-init.conf
	if grep -qix 'PasswordAuthentication yes' "$f" 2>/dev/null; then
		check cloud-init-pwauth PASS "$f has PasswordAuthentication yes; sshd_config.d: $(ls /etc/ssh/sshd_config.d | tr '\n' ' ')"
	else
		check cloud-init-pwauth FAIL "$f: $(cat "$f" 2>&1 | tr '\n' '|')"
	fi
	start_decoy_listener
	host probe expect-ssh=open
	;;
*)
	check scenario FAIL "unknown scenario $scenario boot $boot"
	;;
esac
save
say "DONE"
sleep 1
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger
