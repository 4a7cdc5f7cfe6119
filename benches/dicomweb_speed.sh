#!/usr/bin/env bash
# Issue #14's benchmark: `plumbline run` on a generated cohort read from a folder and from
# a real Orthanc 1.10.1 (DICOMweb plugin) holding the same files. A benchmark, not a test.
#
# Orthanc listens on every interface, so the script runs itself again inside a private
# network namespace (`unshare -n`, as root, loopback up): no traffic leaves the machine.
# It starts Orthanc on a temporary storage, uploads every file of COHORT/dicom with
# `POST /instances`, then runs, each into a new output folder, with --threads 2 --quiet:
#   - folder:      --input COHORT/dicom
#   - dicomweb:    --input http://127.0.0.1:PORT/dicom-web (empty cache: everything fetched)
#   - dicomweb 2:  the same output folder again (the cache and work record reused)
# and prints wall seconds, peak RSS, run.json's stage times and DICOMweb counts, and
# whether the three runs' tables are byte-identical.
#
#   cargo build --release -p plumbline
#   target/release/plumbline synth --patients 60 --seed 1 --out /tmp/b60
#   benches/dicomweb_speed.sh /tmp/b60
#
# Needs: orthanc, orthanc-dicomweb, curl, iproute2 (apt-get install ...), root for unshare.
# PLUMBLINE_BIN overrides the binary (default: target/release/plumbline).

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cohort="$(cd "${1:?usage: benches/dicomweb_speed.sh COHORT_FOLDER (holding dicom/ and clinical.csv)}" && pwd)"
bin="${PLUMBLINE_BIN:-$root/target/release/plumbline}"
[ -x "$bin" ] || { echo "no plumbline binary at $bin; run: cargo build --release -p plumbline" >&2; exit 2; }
[ -d "$cohort/dicom" ] && [ -f "$cohort/clinical.csv" ] || { echo "$cohort has no dicom/ or clinical.csv" >&2; exit 2; }

if [ -z "${PLUMBLINE_BENCH_NETNS:-}" ]; then
    exec unshare -n env PLUMBLINE_BENCH_NETNS=1 PLUMBLINE_BIN="$bin" bash "$0" "$cohort"
fi
ip link set lo up

tmp="$(mktemp -d)"
port=18042
user=bench
pass="bench-$RANDOM$RANDOM"
cat >"$tmp/orthanc.json" <<EOF
{
  "Name": "plumbline-bench",
  "StorageDirectory": "$tmp/storage",
  "IndexDirectory": "$tmp/index",
  "StorageCompression": false,
  "HttpServerEnabled": true,
  "HttpPort": $port,
  "DicomServerEnabled": false,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": true,
  "RegisteredUsers": { "$user": "$pass" },
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
  "DicomWeb": { "Enable": true, "Root": "/dicom-web/" },
  "SaveJobs": false
}
EOF
/usr/sbin/Orthanc "$tmp/orthanc.json" >"$tmp/orthanc.log" 2>&1 &
orthanc=$!
trap 'kill $orthanc 2>/dev/null; wait $orthanc 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 200); do
    curl -sf -u "$user:$pass" "http://127.0.0.1:$port/system" >/dev/null && break
    sleep 0.05
done
printf '%s:%s' "$user" "$pass" >"$tmp/auth.txt"

files=$(find "$cohort/dicom" -type f | wc -l)
bytes=$(du -sb "$cohort/dicom" | cut -f1)
echo "cohort $cohort: $files files, $((bytes / 1000000)) MB; $(nproc) cores; $bin; $(/usr/sbin/Orthanc --version | head -1)"
start=$(date +%s.%N)
find "$cohort/dicom" -type f -print0 | sort -z | while IFS= read -r -d '' f; do
    curl -sf -u "$user:$pass" -X POST --data-binary "@$f" "http://127.0.0.1:$port/instances" -o /dev/null
done
printf '%-12s wall %7.2f s  (POST /instances, one curl per file)\n' "upload" "$(echo "$(date +%s.%N) - $start" | bc)"

# CPU seconds Orthanc has used so far (user + system, from /proc).
orthanc_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$orthanc/stat"
}

# One run: label, output folder, input.
one() {
    local label="$1" out="$2" input="$3"
    local cpu0
    cpu0=$(orthanc_cpu)
    /usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" run --input "$input" --auth-file "$tmp/auth.txt" \
        --clinical "$cohort/clinical.csv" --out "$out" --threads 2 --quiet >/dev/null
    read -r wall peak <"$tmp/time"
    local facts
    facts="$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
s = " ".join(f"{k} {v:.2f}" for k, v in d["durations_s"].items() if v)
w = d.get("dicomweb")
if w:
    s += "; dicomweb: " + ", ".join(f"{k} {v}" for k, v in w.items())
print(s)' "$out/run.json")"
    printf '%-12s wall %7.2f s  peak %4d MB  Orthanc CPU %6.2f s  (%s)\n' "$label" "$wall" \
        $((peak / 1024)) "$(echo "$(orthanc_cpu) - $cpu0" | bc)" "$facts"
}

one folder "$tmp/folder" "$cohort/dicom"
one dicomweb "$tmp/web" "http://127.0.0.1:$port/dicom-web"
one "dicomweb 2" "$tmp/web" "http://127.0.0.1:$port/dicom-web"
same=yes
for t in measurements.csv patients.csv cohort_summary.csv; do
    cmp -s "$tmp/folder/$t" "$tmp/web/$t" || { same=no; echo "$t differs between the folder and the DICOMweb run"; }
done
echo "tables byte-identical (folder vs DICOMweb): $same"
