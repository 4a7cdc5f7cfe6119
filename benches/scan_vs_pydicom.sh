#!/usr/bin/env bash
# Plumbline against plain pydicom on the same DICOM folder (issue #13). A benchmark, not a test.
#
# What it measures:
#   1. `plumbline run --threads 2 --quiet`: the whole job (scan, grouping, metrics, writing
#      the tables), timed with /usr/bin/time (wall seconds, peak RSS). It runs twice, each
#      time into a new empty output folder. The first run warms the page cache. The faster
#      of the two runs is kept.
#   2. benches/pydicom_scan.py with 2 processes: pydicom reading what Plumbline's scan stage
#      reads (headers without pixel data, and every SCOORD point of the landmark SRs with
#      its image and name). Its time is the one the script measures itself (walk, pool,
#      reads). This excludes Python's start-up and the pydicom import. The wall time and
#      peak RSS from /usr/bin/time are printed too. That peak is the largest single process
#      (parent or worker), not their sum.
#   The ratio printed is pydicom seconds / plumbline seconds. pydicom does less than
#   plumbline here: it only scans, and plumbline also computes and writes everything.
#
# Point counts: `plumbline run` does not report landmark points in run.json. If the
# scan_timing example is built, the script runs it once, untimed, to report Plumbline's
# points. It looks for it at $(dirname PLUMBLINE_BIN)/examples/scan_timing, or you can give
# SCAN_TIMING_BIN. Build it with:
#   cargo build --release -p plumbline-ingest --example scan_timing
#
# How to run (from anywhere; paths below are relative to the repository root):
#   cargo build --release -p plumbline
#   pip install pydicom            # or: pip install --break-system-packages pydicom
#   benches/scan_vs_pydicom.sh /tmp/b600/dicom
#
# Arguments and environment:
#   COHORT_DICOM_DIR  the DICOM folder. Give it as the first argument, or in the environment.
#   PLUMBLINE_BIN     default: <repo>/target/release/plumbline
#   CLINICAL_CSV      default: $(dirname COHORT_DICOM_DIR)/clinical.csv
#   SCAN_TIMING_BIN   optional; see "Point counts" above
# Run it on an otherwise idle, 2-core machine. Both tools use 2 workers.

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

COHORT_DICOM_DIR="${1:-${COHORT_DICOM_DIR:-}}"
if [[ -z "$COHORT_DICOM_DIR" ]]; then
    echo "usage: $0 COHORT_DICOM_DIR   (env: PLUMBLINE_BIN, CLINICAL_CSV, SCAN_TIMING_BIN)" >&2
    exit 2
fi
if [[ ! -d "$COHORT_DICOM_DIR" ]]; then
    echo "not a folder: $COHORT_DICOM_DIR" >&2
    exit 2
fi
COHORT_DICOM_DIR="$(cd "$COHORT_DICOM_DIR" && pwd)"
PLUMBLINE_BIN="${PLUMBLINE_BIN:-$root/target/release/plumbline}"
CLINICAL_CSV="${CLINICAL_CSV:-$(dirname "$COHORT_DICOM_DIR")/clinical.csv}"
SCAN_TIMING_BIN="${SCAN_TIMING_BIN:-$(dirname "$PLUMBLINE_BIN")/examples/scan_timing}"

if [[ ! -x "$PLUMBLINE_BIN" ]]; then
    echo "no plumbline binary at $PLUMBLINE_BIN: run 'cargo build --release -p plumbline' or set PLUMBLINE_BIN" >&2
    exit 2
fi
if [[ ! -f "$CLINICAL_CSV" ]]; then
    echo "no clinical table at $CLINICAL_CSV: set CLINICAL_CSV" >&2
    exit 2
fi
if [[ ! -x /usr/bin/time ]]; then
    echo "/usr/bin/time is needed (GNU time; apt-get install time)" >&2
    exit 2
fi
if ! python3 -c 'import pydicom' 2>/dev/null; then
    echo "pydicom is not installed: pip install pydicom" >&2
    exit 2
fi

# Every temporary file and folder is under this one folder, removed on exit.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "folder:    $COHORT_DICOM_DIR"
echo "clinical:  $CLINICAL_CSV"
echo "plumbline: $PLUMBLINE_BIN"

# --- 1. plumbline run, twice (the first is a warm-up); keep the faster ---------------
best_s=""
best_kb=""
best_json=""
for i in 1 2; do
    out="$(mktemp -d "$work/plumbline-out.XXXXXX")"
    /usr/bin/time -f '%e %M' -o "$work/time.$i" \
        "$PLUMBLINE_BIN" run --input "$COHORT_DICOM_DIR" --clinical "$CLINICAL_CSV" \
        --out "$out" --threads 2 --quiet
    read -r s kb < <(tail -n 1 "$work/time.$i")
    echo "plumbline run $i: $s s wall, $kb KB peak RSS"
    if [[ -z "$best_s" ]] || awk -v a="$s" -v b="$best_s" 'BEGIN { exit !(a < b) }'; then
        best_s="$s"
        best_kb="$kb"
        cp "$out/run.json" "$work/run.json"
        best_json="$work/run.json"
    fi
    rm -rf "$out"
done

# Counts and scan-stage time from run.json.
read -r pl_files pl_images pl_srs pl_scan < <(python3 - "$best_json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
i = r["input"]
print(i["files"], i["images"], i["landmark_srs"], f'{r["durations_s"]["scan"]:.2f}')
EOF
)

# Points: run.json has none, so use the scan_timing example if it is built.
pl_points="n/a"
if [[ -x "$SCAN_TIMING_BIN" ]]; then
    line="$("$SCAN_TIMING_BIN" "$COHORT_DICOM_DIR" 2 || true)"
    pl_points="$(sed -n 's/.* SRs, \([0-9]*\) points.*/\1/p' <<<"$line")"
    [[ -n "$pl_points" ]] || pl_points="n/a"
fi

# --- 2. pydicom -------------------------------------------------------------------------
/usr/bin/time -f '%e %M' -o "$work/time.py" \
    python3 "$here/pydicom_scan.py" "$COHORT_DICOM_DIR" --processes 2 --json "$work/pydicom.json"
read -r py_wall py_kb < <(tail -n 1 "$work/time.py")
read -r py_s py_files py_images py_srs py_points < <(python3 - "$work/pydicom.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["seconds"], r["files"], r["images"], r["srs"], r["points"])
EOF
)

# --- 3. summary ---------------------------------------------------------------------------
echo
echo "plumbline: $best_s s wall (faster of 2 runs; scan stage ${pl_scan} s), $best_kb KB peak RSS," \
    "$pl_files files ($pl_images images, $pl_srs SRs, $pl_points points), 2 threads"
echo "pydicom:   $(printf %.1f "$py_s") s (python process: $py_wall s wall, $py_kb KB peak RSS of one process)," \
    "$py_files files ($py_images images, $py_srs SRs, $py_points points), 2 processes"
if [[ "$pl_points" != "n/a" && "$pl_points" != "$py_points" ]]; then
    echo "WARNING: the two found different numbers of points ($pl_points vs $py_points)"
fi
if [[ "$pl_srs" != "$py_srs" || "$pl_images" != "$py_images" ]]; then
    echo "WARNING: the two counted different images/SRs (plumbline $pl_images/$pl_srs, pydicom $py_images/$py_srs)"
fi
awk -v p="$py_s" -v r="$best_s" 'BEGIN {
    if (r <= 0) { printf "ratio: n/a (plumbline took %s s)\n", r; exit }
    printf "ratio: %.1fx (pydicom %.1f s / plumbline %.2f s)\n", p / r, p, r
}'
