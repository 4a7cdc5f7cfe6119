#!/usr/bin/env bash
# Two plumbline binaries on the same cohorts, alternated: the way every "before -> after"
# of BENCHMARKS.md since the fifth session on #13 was measured. A benchmark, not a test.
#
# The machine's speed drifts from minute to minute, so the two binaries run one after the
# other, PAIRS times, for each cohort, each run into a new output folder (nothing reused
# from a work record), 2 threads, --quiet. One line per run: wall seconds and peak RSS
# (/usr/bin/time) and run.json's stage times; at the end, per cohort and binary, the
# range of wall and peak. The tables, QC and report of the two binaries' last runs are
# compared with `cmp` (a change meant to be faster must not change an output).
#
#   cp target/release/plumbline /tmp/pl_before     # build the old commit first
#   cargo build --release -p plumbline
#   PAIRS=3 benches/compare.sh /tmp/pl_before target/release/plumbline /tmp/b600 /tmp/b5000
#
# Each COHORT is a folder made by `plumbline synth` (COHORT/dicom, COHORT/clinical.csv).
# Warm the page cache first (`find COHORT -type f -print0 | xargs -0 cat >/dev/null`).

set -euo pipefail

[ $# -ge 3 ] || { echo "usage: benches/compare.sh BEFORE_BIN AFTER_BIN COHORT..." >&2; exit 2; }
before="$1"
after="$2"
shift 2
pairs="${PAIRS:-3}"
for b in "$before" "$after"; do
    [ -x "$b" ] || { echo "no executable at $b" >&2; exit 2; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# One run of binary $1 ("before" or "after" as $2) on cohort $3 into $tmp/$2.
one() {
    local bin="$1" label="$2" cohort="$3"
    local out="$tmp/$label"
    rm -rf "$out"
    /usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" run --input "$cohort/dicom" \
        --clinical "$cohort/clinical.csv" --out "$out" --threads 2 --quiet >/dev/null
    read -r wall peak <"$tmp/time"
    local stages
    stages="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["durations_s"]; print(" ".join(f"{k} {v:.2f}" for k,v in d.items() if v >= 0.005))' "$out/run.json")"
    printf '%-7s %-24s wall %6.2f s  peak %7d KiB  (%s)\n' "$label" "$(basename "$cohort")" "$wall" "$peak" "$stages"
    echo "$(basename "$cohort") $label $wall $peak" >>"$tmp/all"
}

echo "before: $before"
echo "after:  $after"
for cohort in "$@"; do
    [ -d "$cohort/dicom" ] && [ -f "$cohort/clinical.csv" ] || { echo "$cohort has no dicom/ or clinical.csv" >&2; exit 2; }
    for _ in $(seq 1 "$pairs"); do
        one "$before" before "$cohort"
        one "$after" after "$cohort"
    done
    for f in measurements.csv patients.csv cohort_summary.csv qc.csv report.html; do
        if [ -e "$tmp/before/$f" ] || [ -e "$tmp/after/$f" ]; then
            cmp -s "$tmp/before/$f" "$tmp/after/$f" ||
                echo "DIFFERENT: $f of $(basename "$cohort") (before and after)"
        fi
    done
done
python3 - "$tmp/all" <<'PY'
import collections, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    cohort, label, wall, peak = line.split()
    runs[(cohort, label)].append((float(wall), int(peak)))
for (cohort, label), v in runs.items():
    w = [x for x, _ in v]
    p = [y for _, y in v]
    print(f"{cohort:<24} {label:<7} wall {min(w):.2f}-{max(w):.2f} s, peak {min(p):,}-{max(p):,} KiB ({len(v)} runs)")
PY
