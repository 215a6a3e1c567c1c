#!/bin/sh
# record.sh LOG ARGS...: appends one line per call to LOG: the time in ns,
# then each argument between < and >; and prints a line to its output.
log=$1
shift
line="$(date +%s%N)"
for a in "$@"; do line="$line <$a>"; done
echo "$line" >> "$log"
echo "switched outlet: $*"
