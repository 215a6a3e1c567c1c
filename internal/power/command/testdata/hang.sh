#!/bin/sh
# hang.sh PIDFILE: starts a child that would outlive it, records its pid,
# and waits forever.
sleep 300 &
echo $! > "$1"
wait
