#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (fuzz/corpus/<target>/).

Run from the repository root: python3 fuzz/make_seeds.py   (needs pydicom, see
fixtures/interop/requirements.txt). Deterministic: the same fixtures give the same seeds.

scan_file inputs are one selector byte (file name: 0 `input.dcm`, 1 `input`,
2 `input.mrk.json`, 3 `input.csv`) followed by the file's bytes. Seeds:
- small committed files unchanged: cohort RLE and native images, JPEG baseline and RLE
  codec files, a highdicom SR, a Slicer Markups JSON, landmark CSVs;
- a cohort SR cut down to 3 items per ContentSequence (explicit VR LE, implicit VR LE,
  explicit VR big endian), so the fuzzer mutates a 4 KB SR instead of a 100 KB one;
- an uncompressed image cut 4 KB in (pixel data truncated);
- SRs with a content tree nested 130 levels (just inside the scan's structure limit) and
  140 levels (just past it), with defined and undefined lengths.
clinical_csv inputs are the file's bytes: the committed tables and a few variants.
"""

import copy
import io
import shutil
from pathlib import Path

import sys

import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
OUT = ROOT / "fuzz" / "corpus"
COHORT = FIX / "cohort-small" / "dicom" / "P0001"


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def seed(name, selector, data):
    put("scan_file", name, bytes([selector]) + data)


def dicom_bytes(ds, implicit=False, little=True):
    """Preamble, file meta group and `ds` in the given encoding."""
    ts = {
        (False, True): pydicom.uid.ExplicitVRLittleEndian,
        (True, True): pydicom.uid.ImplicitVRLittleEndian,
        (False, False): pydicom.uid.ExplicitVRBigEndian,
    }[(implicit, little)]
    meta = FileMetaDataset(ds.file_meta)
    meta.TransferSyntaxUID = ts
    body = Dataset(ds)
    body.file_meta = None
    del body.file_meta
    for _ in body.iterall():  # decode every raw element, so the encoding can change
        pass
    fp = DicomBytesIO()
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, body)
    return fp.getvalue()


def trim(ds, keep=3):
    """Keeps the first `keep` items of every ContentSequence (iteratively)."""
    todo = [ds]
    while todo:
        d = todo.pop()
        if "ContentSequence" in d:
            d.ContentSequence = Sequence(list(d.ContentSequence)[:keep])
            todo.extend(d.ContentSequence)
    return ds


def deep(template, depth, undefined):
    """`template` (an SR) with its content replaced by a chain of `depth` containers
    ending in the template's first SCOORD."""
    ds = Dataset(template)
    ds.file_meta = template.file_meta
    point = None
    todo = [ds]
    while todo and point is None:
        d = todo.pop()
        for it in d.get("ContentSequence", []):
            if it.get("ValueType") == "SCOORD":
                point = copy.deepcopy(it)
                break
            todo.append(it)
    node = point
    for _ in range(depth + 1):
        c = Dataset()
        c.RelationshipType = "CONTAINS"
        c.ValueType = "CONTAINER"
        c.ContinuityOfContent = "SEPARATE"
        c.ContentSequence = Sequence([node])
        c["ContentSequence"].is_undefined_length = undefined
        node.is_undefined_length_sequence_item = undefined
        node = c
    # The last container's sequence becomes the root's.
    ds.ContentSequence = node.ContentSequence
    ds["ContentSequence"].is_undefined_length = undefined
    return ds


def main():
    sys.setrecursionlimit(100_000)  # pydicom writes nested sequences recursively
    if OUT.exists():
        shutil.rmtree(OUT)
    # Committed files, unchanged.
    seed("cohort_rle_ap.dcm", 0, (COHORT / "20210822_m3" / "XR_AP.dcm").read_bytes())
    seed("synth_jpeg_base.dcm", 0, (FIX / "interop/codecs/SYNTH_JPEG_BASE.dcm").read_bytes())
    seed("synth_rle.dcm", 1, (FIX / "interop/codecs/SYNTH_RLE.dcm").read_bytes())
    seed("highdicom_tracking_only.dcm", 0, (FIX / "interop/sr/sr_tracking_only.dcm").read_bytes())
    data = ROOT / "crates/ingest/tests/data"
    seed("two_images.mrk.json", 2, (data / "two_images.mrk.json").read_bytes())
    seed("landmarks.csv", 3, (data / "landmarks.csv").read_bytes())
    seed("landmarks_spec_header.csv", 3, (data / "landmarks_spec_header.csv").read_bytes())
    seed("not_dicom.txt", 1, b"this is not DICOM\n")
    # A native image cut inside its pixel data.
    seed("native_cut.dcm", 1, (COHORT / "20210530_preop" / "IM0002").read_bytes()[:4096])
    # Small SRs in three transfer syntaxes.
    sr = pydicom.dcmread(COHORT / "20210530_preop" / "SR_alpha_ap.dcm")
    small = trim(copy.deepcopy(sr))
    seed("sr_small_explicit.dcm", 0, dicom_bytes(small))
    seed("sr_small_implicit.dcm", 0, dicom_bytes(small, implicit=True))
    seed("sr_small_big_endian.dcm", 0, dicom_bytes(small, little=False))
    # Deep trees around the structure check's limit (4 * 64 + 16 = 272 levels).
    for depth in (130, 140):
        for undefined in (False, True):
            kind = "undefined" if undefined else "defined"
            seed(f"sr_deep_{depth}_{kind}.dcm", 0, dicom_bytes(deep(sr, depth, undefined)))

    # Clinical tables.
    clinical = (FIX / "cohort-small/clinical.csv").read_bytes()
    put("clinical_csv", "cohort.csv", clinical)
    put("clinical_csv", "bom.csv", (data / "clinical_bom.csv").read_bytes())
    put("clinical_csv", "crlf.csv", clinical.replace(b"\n", b"\r\n"))
    put("clinical_csv", "semicolons.csv", clinical.replace(b",", b";"))
    put(
        "clinical_csv",
        "messy.csv",
        b"Patient_ID , surgery_date,herniation_level,herniation_side,notes\n"
        b'P1,2021-02-28,l4 - l5,LEFT,"a, b"\n'
        b"P1,2021-03-01,L5-S1,right,dup\n"
        b"P2,2023-02-29,L4-S1,central,bad date\n"
        b"P3,2024-02-29,T12-L1,centre,bad side\n"
        b",,,,\n"
        b"P4,2020-01-01,L5-L4,left\n"
        b'"P5",1999-12-31,C7-T1,Right,"multi\nline"\n',
    )
    put("clinical_csv", "missing_column.csv", b"patient_id,surgery_date,herniation_level\nP1,2021-01-01,L4-L5\n")
    put("clinical_csv", "duplicate_column.csv", b"patient_id,Patient_ID,surgery_date,herniation_level,herniation_side\n")


if __name__ == "__main__":
    main()
