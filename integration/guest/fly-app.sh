#!/bin/sh
# The Fly scenario's app: the image's CMD, run by `harden boot --` (the ENTRYPOINT) under
# flyinit, the suite's stand-in for Fly's init. It tells the checker what it sees through
# files under /run/app, leaves an orphan behind, and listens on an allowed port (8080, from
# fly-proxy) and on one the policy does not open (9090) once the checker says go.
set -u
A=/run/app
mkdir -p "$A"
echo "$PPID" >"$A/ppid" # harden boot
env | grep '^FLY_' | sort >"$A/env"
pids=""
trap 'echo HUP >>$A/signals' HUP
trap 'echo USR1 >>$A/signals' USR1
trap 'echo USR2 >>$A/signals' USR2
trap 'echo TERM >>$A/signals; kill $pids 2>/dev/null; echo "app: SIGTERM, exiting 42"; exit 42' TERM
echo "app: started as pid $$ under $PPID"

# An orphan: the inner shell exits at once and leaves its sleep to the nearest subreaper.
sh -c "sleep 25 & echo \$! >$A/orphan.pid"

touch "$A/started"
while [ ! -e "$A/go" ]; do sleep 0.2; done
mkdir -p "$A/www"
echo harden-test-app >"$A/www/index.html"
busybox httpd -f -p 8080 -h "$A/www" &
pids="$!"
busybox httpd -f -p 9090 -h "$A/www" &
pids="$pids $!"
touch "$A/listening"
echo "app: listening on 8080 and 9090"
# sleep in the background and wait: a trapped signal interrupts wait at once.
while :; do
	sleep 1 &
	wait $!
done
