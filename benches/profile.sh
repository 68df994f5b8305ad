#!/bin/sh
# Count-based profile of one row of the engine bench, for each side (engine, raw tokio, the
# physical limit): CPU time, context switches and syscalls per message. Counts, unlike rates,
# barely move with the machine's load (see benches/PROFILE.md).
#
#     sh benches/profile.sh small-default       # 5 rounds of 500 000 messages of 64 B
#     sh benches/profile.sh throughput-10to1    # 5 rounds of 10 x 2 000 messages of 32 KiB
#     sh benches/profile.sh throughput-1to1 engine raw
set -e
cd "$(dirname "$0")/.."
ROW=${1:-small-default}
[ $# -gt 0 ] && shift
case $ROW in
    small-default|small-queue128) MSGS=2500000 ;;
    throughput-1to1|throughput-10to1) MSGS=100000 ;;
    *) echo "unknown row $ROW" >&2; exit 2 ;;
esac
cargo bench -p pea2pea-benches --bench engine --no-run 2>/dev/null
BIN=${BIN:-$(ls -t target/release/deps/engine-* | grep -v '\.d$' | head -1)}
for side in ${*:-engine raw limit}; do
    perf stat -x, -e task-clock,context-switches,page-faults -o /tmp/profile.stat \
        env PEA2PEA_BENCH_SIDE=$side "$BIN" --bench "$ROW" > /tmp/profile.out
    rate=$(grep -E '^\| (small|throughput)' /tmp/profile.out | awk -F'|' '{print $4 $5 $7}')
    strace -c -f -o /tmp/profile.strace env PEA2PEA_BENCH_SIDE=$side "$BIN" --bench "$ROW" > /dev/null
    awk -F, -v side="$side" -v m=$MSGS -v rate="$rate" '
        /task-clock/ { cpu = $1 * 1e6 / m }
        /context-switches/ { cs = $1 * 1000 / m }
        /page-faults/ { pf = $1 * 1000 / m }
        END { printf "%-7s rate (engine raw limit):%s | CPU %.0f ns/msg | %.2f context switches, %.1f page faults per 1000 msgs\n", side, rate, cpu, cs, pf }
    ' /tmp/profile.stat
    awk -v m=$MSGS '$NF ~ /^(sendto|writev|write|recvfrom|read|epoll_wait|futex|sched_yield)$/ {
        printf "        %-10s %8d calls, %8.2f per 1000 msgs\n", $NF, $4, $4 * 1000 / m }' /tmp/profile.strace
done
