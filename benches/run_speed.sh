#!/usr/bin/env bash
# The speed targets of issue #13, measured on a generated cohort. A benchmark, not a test:
# the numbers depend on the machine and on what else runs on it.
#
# For a cohort folder made by `plumbline synth` (COHORT/dicom, COHORT/clinical.csv) it runs
# `plumbline run --threads 2 --quiet`, each time into a new output folder (so nothing is
# reused from a work record), and prints one line per run: wall seconds, peak RSS and the
# stage times of run.json:
#   - warm: RUNS runs (default 3) with the page cache warm (after one untimed warm-up run),
#     each right after a `cat` of the cohort, with its ratio to that `cat`, and the medians;
#   - cold: one run after `echo 3 > /proc/sys/vm/drop_caches`, when the machine lets us
#     (root); otherwise it says so and skips it;
#   - shards: with SHARDS=N (e.g. 4), each of `--shard K/N`, warm;
#   - cat: the time `cat` takes to read every file of the cohort, warm (the floor).
#
#   cargo build --release -p plumbline
#   target/release/plumbline synth --patients 600 --seed 1 --out /tmp/b600
#   benches/run_speed.sh /tmp/b600
#   SHARDS=4 RUNS=2 benches/run_speed.sh /tmp/b5000
#
# PLUMBLINE_BIN overrides the binary (default: target/release/plumbline).

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cohort="${1:?usage: benches/run_speed.sh COHORT_FOLDER (holding dicom/ and clinical.csv)}"
bin="${PLUMBLINE_BIN:-$root/target/release/plumbline}"
runs="${RUNS:-3}"
shards="${SHARDS:-0}"
[ -x "$bin" ] || { echo "no plumbline binary at $bin; run: cargo build --release -p plumbline" >&2; exit 2; }
[ -d "$cohort/dicom" ] && [ -f "$cohort/clinical.csv" ] || { echo "$cohort has no dicom/ or clinical.csv" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# One run: label, then extra arguments for plumbline run.
one() {
    local label="$1"
    shift
    local out="$tmp/out-$RANDOM-$RANDOM"
    /usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" run --input "$cohort/dicom" \
        --clinical "$cohort/clinical.csv" --out "$out" --threads 2 --quiet "$@" >/dev/null
    read -r wall peak <"$tmp/time"
    local stages
    stages="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["durations_s"]; print(" ".join(f"{k} {v:.2f}" for k,v in d.items() if k!="overlays"))' "$out/run.json")"
    printf '%-14s wall %6.2f s  peak %5d MB  (%s)\n' "$label" "$wall" $((peak / 1024)) "$stages"
    rm -rf "$out"
}

files=$(find "$cohort/dicom" -type f | wc -l)
bytes=$(du -sb "$cohort/dicom" | cut -f1)
echo "cohort $cohort: $files files, $((bytes / 1000000)) MB; $(nproc) cores; $bin"

find "$cohort/dicom" -type f -print0 | xargs -0 cat >/dev/null
/usr/bin/time -f '%e' -o "$tmp/time" sh -c "find '$cohort/dicom' -type f -print0 | xargs -0 cat >/dev/null"
printf '%-14s wall %6.2f s\n' "cat (warm)" "$(cat "$tmp/time")"

# The machine's speed varies from minute to minute (a shared host): each warm run is
# timed right after a `cat` of the cohort, and its ratio to that `cat` printed; the
# summary gives the medians.
cat_time() {
    /usr/bin/time -f '%e' -o "$tmp/cat" sh -c "find '$cohort/dicom' -type f -print0 | xargs -0 cat >/dev/null"
    cat "$tmp/cat"
}
one "warm-up"
: >"$tmp/walls"
for i in $(seq 1 "$runs"); do
    c=$(cat_time)
    one "warm $i"
    read -r w _ <"$tmp/time"
    printf '%-14s wall %6.2f s  (warm %d took %.2fx this cat)\n' "cat before $i" "$c" "$i" "$(python3 -c "print($w/$c)")"
    echo "$w $c" >>"$tmp/walls"
done
python3 - "$tmp/walls" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
walls = [w for w, _ in rows]
cats = [c for _, c in rows]
ratios = [w / c for w, c in rows]
print(f"warm median   wall {statistics.median(walls):6.2f} s (min {min(walls):.2f}, max {max(walls):.2f}); "
      f"cat median {statistics.median(cats):.2f} s; ratio median {statistics.median(ratios):.2f}x "
      f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x)")
PY

if [ "$shards" -gt 0 ]; then
    for k in $(seq 0 $((shards - 1))); do one "shard $k/$shards" --shard "$k/$shards"; done
fi

if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
    one "cold"
else
    echo "cold: skipped (cannot write /proc/sys/vm/drop_caches; run as root)"
fi
