//! RLE frames never make the decoder allocate more than the frame they declare (Rows x
//! Columns x bytes per sample), whichever decoder expands them: measured with a global
//! allocator that records the largest single allocation of the test's thread.

// The one place of the workspace with unsafe code: a global allocator that passes every
// call on to the system allocator (GlobalAlloc is an unsafe trait). See Cargo.toml.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

use dicom_core::value::PixelFragmentSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use plumbline_render::decode::{DecodeError, decode_modality, load_display};

struct Largest;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// What `f` returns and the largest single allocation it made on this thread.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|m| m.set(0));
    let r = f();
    (r, LARGEST.with(Cell::get))
}

/// `n` copies of `b` as PackBits replicate runs of at most 128.
fn replicate(b: u8, mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while n > 0 {
        let k = n.min(128);
        out.extend([(1 - k as i32) as i8 as u8, b]);
        n -= k;
    }
    out
}

/// An RLE fragment of two segments (most significant byte first), padded to even length.
fn fragment(msb: &[u8], lsb: &[u8]) -> Vec<u8> {
    let mut frag = vec![0u8; 64];
    frag[..4].copy_from_slice(&2u32.to_le_bytes());
    frag[4..8].copy_from_slice(&64u32.to_le_bytes());
    frag[8..12].copy_from_slice(&(64 + msb.len() as u32).to_le_bytes());
    frag.extend(msb);
    frag.extend(lsb);
    if frag.len() % 2 == 1 {
        frag.push(0);
    }
    frag
}

/// The cohort's 320 x 136 lateral (16 bits allocated, 12 stored, with a window) declaring
/// `rows x cols` and holding `frag` as RLE Lossless pixel data.
fn rle_file(name: &str, rows: u16, cols: u16, frag: Vec<u8>) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cohort-small/dicom/P0001/20210607_postop/XR_LAT.dcm");
    let mut obj = dicom_object::open_file(src).unwrap();
    obj.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(rows),
    ));
    obj.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(cols),
    ));
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PixelFragmentSequence::new(vec![], vec![frag]),
    ));
    obj.meta_mut().transfer_syntax = uids::RLE_LOSSLESS.into();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("render-rle-guard");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    obj.write_to_file(&out).unwrap();
    out
}

#[test]
fn a_stream_short_of_a_huge_declared_frame_is_refused_without_allocating_it() {
    // 65535 x 65535 x 16 bits declared (8 GiB), 600 samples given
    let path = rle_file(
        "huge_short.dcm",
        65535,
        65535,
        fragment(&replicate(1, 600), &replicate(2, 600)),
    );
    let (r, largest) = largest_allocation(|| decode_modality(&path));
    let e = r.unwrap_err();
    assert!(matches!(e, DecodeError::Decode { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("RLE: segment 0: ends after 600 of 4294836225 samples"),
        "{text}"
    );
    assert!(largest < 1 << 20, "largest allocation {largest} bytes");
}

#[test]
fn a_stream_expanding_past_its_frame_is_cut_within_the_frame() {
    // 64 x 64 x 16 bits declared (8 KiB); each segment expands to 100 times the frame
    // (dicom-pixeldata's decoder would expand 409600 bytes per segment)
    let n = 64 * 64;
    let path = rle_file(
        "bomb.dcm",
        64,
        64,
        fragment(&replicate(0x03, 100 * n), &replicate(0x21, 100 * n)),
    );
    let ((rows, cols, v), largest) = largest_allocation(|| decode_modality(&path).unwrap());
    assert_eq!((rows, cols), (64, 64));
    assert!(v.iter().all(|&x| x == f32::from(0x0321u16 & 0x0FFF)));
    assert!(largest < 100 * n, "largest allocation {largest} bytes");
}

#[test]
fn a_frame_the_library_guard_refuses_is_decoded_in_one_buffer_of_its_size() {
    // 3000 x 3000 x 16 bits = 18 MB (at least 16 MiB) from ~280 KB (less than 1/32): the
    // size dicom-pixeldata refuses; decoded here into one buffer of exactly 18 MB
    let (rows, cols) = (3000u16, 3000u16);
    let n = usize::from(rows) * usize::from(cols);
    let path = rle_file(
        "flat_large.dcm",
        rows,
        cols,
        fragment(&replicate(0x02, n), &replicate(0x80, n)),
    );
    let (d, largest) = largest_allocation(|| load_display(&path, 300).unwrap());
    assert_eq!((d.image.width(), d.image.height()), (300, 300));
    // 0x0280 = 640 through the window 1400/2800: one grey level everywhere
    let first = d.image.as_raw()[0];
    assert!(d.image.as_raw().iter().all(|&p| p == first));
    assert_eq!(largest, n * 2, "the frame is the largest allocation");
}
