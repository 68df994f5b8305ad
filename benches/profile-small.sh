#!/bin/sh
# Count-based profile of the small-message row (`small-default`: 5 rounds of 500 000 messages
# of 64 B, queue 64) for each side of the engine bench: CPU time, context switches and
# syscalls per message. Counts, unlike rates, barely move with the machine's load.
#
#     sh benches/profile-small.sh [engine raw limit]
set -e
cd "$(dirname "$0")/.."
cargo bench -p pea2pea-benches --bench engine --no-run 2>/dev/null
BIN=$(ls -t target/release/deps/engine-* | grep -v '\.d$' | head -1)
MSGS=2500000
for side in ${*:-engine raw limit}; do
    perf stat -x, -e task-clock,context-switches,cpu-migrations -o /tmp/profile-small.stat \
        env PEA2PEA_BENCH_SIDE=$side "$BIN" --bench small-default > /tmp/profile-small.out
    rate=$(grep 'small 1->1' /tmp/profile-small.out | awk -F'|' '{print $4 $5 $7}')
    strace -c -f -o /tmp/profile-small.strace env PEA2PEA_BENCH_SIDE=$side "$BIN" --bench small-default > /dev/null
    awk -F, -v side="$side" -v m=$MSGS -v rate="$rate" '
        /task-clock/ { cpu = $1 * 1e6 / m }
        /context-switches/ { cs = $1 * 1000 / m }
        END { printf "%-7s rate (Mmsg/s, engine raw limit):%s | CPU %.0f ns/msg | %.2f context switches per 1000 msgs\n", side, rate, cpu, cs }
    ' /tmp/profile-small.stat
    awk -v m=$MSGS '$NF ~ /^(sendto|writev|write|recvfrom|read|epoll_wait|futex|sched_yield)$/ {
        printf "        %-10s %8d calls, %6.2f per 1000 msgs\n", $NF, $4, $4 * 1000 / m }' /tmp/profile-small.strace
done
