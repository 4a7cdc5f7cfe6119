#!/usr/bin/env python3
"""pydicom doing the reading of Plumbline's scan stage, for a speed comparison (issue #13).

This is a benchmark, not a test: it checks nothing. It times how long plain pydicom
takes to read what `plumbline run` reads in its scan stage from a folder of DICOM
files, so that `benches/scan_vs_pydicom.sh` can print the ratio between the two.

What it reads:

* The folder is walked at any depth. The sorted file list goes to a
  `multiprocessing.Pool` (2 worker processes by default, `imap_unordered`, chunks of
  16 files). Each file is read with
  `pydicom.dcmread(path, stop_before_pixels=True, force=False)`: headers only, no pixel
  data. A file without the DICM preamble is skipped and counted as not DICOM. Any
  other exception is counted as a broken file.
* For every file: SOPClassUID, SOPInstanceUID, PatientID, StudyInstanceUID, StudyDate,
  Modality, ViewPosition, Rows, Columns, PixelSpacing, ImagerPixelSpacing and
  PatientOrientation.
* For Comprehensive SR, Enhanced SR and Comprehensive 3D SR (SOP classes
  1.2.840.10008.5.1.4.1.1.88.33, .88.22 and .88.34): the whole ContentSequence tree,
  walked with an explicit stack. For every SCOORD item it reads:
  * GraphicType, and GraphicData (its first 2 floats);
  * the ReferencedSOPInstanceUID of its SELECTED FROM image (a ContentSequence child
    with ValueType IMAGE);
  * a landmark name. This is the TextValue of the TEXT sibling in the same container
    whose concept (ConceptNameCodeSequence[0].CodeValue) is 112039, Tracking
    Identifier. If there is none, it is the CodeMeaning of the CODE sibling whose
    concept is 121071, Finding.
* Each worker sends its records (header values, and the points with their image and
  name) back to the parent process, and the parent keeps all of them in memory, as
  Plumbline keeps its scan results.

Counts: files (DICOM files read), images (files that are not one of those SRs), SRs and
points (SCOORD items). It also counts files that are not DICOM and broken files.

The time covers walking the folder, the pool's start and every read. It does not
cover starting Python or importing pydicom.

Usage:

    python3 benches/pydicom_scan.py DIR [--processes 2] [--json out.json]

It prints one line such as

    pydicom: 8781 files (4800 images, 3981 SRs, 541983 points) in 215.3 s with 2 processes

followed by the same numbers as one line of JSON, with the keys files, images, srs,
points, seconds and processes, plus not_dicom and broken. With `--json FILE`, the
JSON goes to FILE instead of stdout.
"""

import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

SR_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
        "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
        "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    }
)
TRACKING_IDENTIFIER = "112039"
FINDING = "121071"

HEADER_KEYWORDS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "PatientID",
    "StudyInstanceUID",
    "StudyDate",
    "Modality",
    "ViewPosition",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "PatientOrientation",
)
MULTI_VALUED = ("PixelSpacing", "ImagerPixelSpacing", "PatientOrientation")


def _plain(value):
    """A header value as plain Python data, so that it pickles small and cheaply."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return str(value)


def _concept_value(item):
    """The CodeValue of an item's ConceptNameCodeSequence[0], or None."""
    seq = item.get("ConceptNameCodeSequence")
    if not seq:
        return None
    return seq[0].get("CodeValue")


def _selected_from_image(scoord):
    """ReferencedSOPInstanceUID of a SCOORD's IMAGE child, or None."""
    for child in scoord.get("ContentSequence") or ():
        if child.get("ValueType") == "IMAGE":
            refs = child.get("ReferencedSOPSequence")
            if refs:
                uid = refs[0].get("ReferencedSOPInstanceUID")
                return str(uid) if uid is not None else None
    return None


def read_sr_points(ds):
    """Every SCOORD point in the SR as (name, image_uid, graphic_type, x, y)."""
    points = []
    root = ds.get("ContentSequence")
    if not root:
        return points
    stack = [root]
    while stack:
        items = stack.pop()
        # First pass over the container: the names its SCOORDs take, and subtrees to visit.
        tracking = None
        finding = None
        scoords = []
        for item in items:
            vt = item.get("ValueType")
            if vt == "SCOORD":
                scoords.append(item)
                continue  # its children are its SELECTED FROM image, read with the point
            if vt == "TEXT" and tracking is None and _concept_value(item) == TRACKING_IDENTIFIER:
                tracking = item.get("TextValue")
            elif vt == "CODE" and finding is None and _concept_value(item) == FINDING:
                codes = item.get("ConceptCodeSequence")
                if codes:
                    finding = codes[0].get("CodeMeaning")
            children = item.get("ContentSequence")
            if children:
                stack.append(children)
        if not scoords:
            continue
        name = tracking if tracking is not None else finding
        name = str(name) if name is not None else None
        for sc in scoords:
            graphic_type = sc.get("GraphicType")
            data = sc.get("GraphicData")
            if data is None or len(data) < 2:
                continue
            points.append(
                (
                    name,
                    _selected_from_image(sc),
                    str(graphic_type) if graphic_type is not None else None,
                    float(data[0]),
                    float(data[1]),
                )
            )
    return points


def read_file(path):
    """One file: ("image" | "sr", headers, points), ("not_dicom", path, why) or ("broken", path, why)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=False)
        headers = {kw: _plain(ds.get(kw)) for kw in HEADER_KEYWORDS}
        if headers["SOPClassUID"] in SR_CLASSES:
            return ("sr", headers, read_sr_points(ds))
        return ("image", headers, None)
    except InvalidDicomError as e:
        return ("not_dicom", path, str(e))
    except Exception as e:  # noqa: BLE001 - a benchmark counts broken files, never stops
        return ("broken", path, f"{type(e).__name__}: {e}")


def list_files(folder):
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in files:
            out.append(os.path.join(root, f))
    out.sort()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="folder of DICOM files (any depth)")
    ap.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--chunksize", type=int, default=16, help="files per task (default 16)")
    ap.add_argument("--json", metavar="FILE", help="write the JSON summary here, not to stdout")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.dir):
        ap.error(f"not a folder: {args.dir}")

    start = time.perf_counter()
    paths = list_files(args.dir)
    records = []  # kept to the end, as Plumbline keeps its scan results
    counts = {"image": 0, "sr": 0, "not_dicom": 0, "broken": 0}
    points = 0
    broken_examples = []
    with Pool(args.processes) as pool:
        for rec in pool.imap_unordered(read_file, paths, chunksize=args.chunksize):
            kind = rec[0]
            counts[kind] += 1
            if kind == "sr":
                points += len(rec[2])
            elif kind == "broken" and len(broken_examples) < 5:
                broken_examples.append(rec[1:])
            records.append(rec)
    seconds = time.perf_counter() - start

    files = counts["image"] + counts["sr"]
    summary = {
        "files": files,
        "images": counts["image"],
        "srs": counts["sr"],
        "points": points,
        "seconds": round(seconds, 3),
        "processes": args.processes,
        "not_dicom": counts["not_dicom"],
        "broken": counts["broken"],
    }
    extra = ""
    if counts["not_dicom"] or counts["broken"]:
        extra = f"; skipped {counts['not_dicom']} not DICOM, {counts['broken']} broken"
    print(
        f"pydicom: {files} files ({counts['image']} images, {counts['sr']} SRs, "
        f"{points} points) in {seconds:.1f} s with {args.processes} processes{extra}"
    )
    for path, why in broken_examples:
        print(f"  broken: {path}: {why}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f)
            f.write("\n")
    else:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
