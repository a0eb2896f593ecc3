//! The IDX format of the MNIST files, gzipped or raw.
//!
//! Layout: two zero bytes, a type byte (`0x08` = unsigned bytes, the only type MNIST uses), the
//! number of dimensions, each dimension as a big-endian `u32`, then the data, row-major.
//! The reader checks all of it and never trusts the header for an allocation: data is read up
//! to the size the header claims and a short file is an error, so a header claiming 10⁹ images
//! in a 100-byte file costs 100 bytes, not gigabytes.

use crate::{Error, Result};
use nalgebra::DMatrix;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (MNIST images: `[count, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// Keeps only the first `n` entries along the outermost dimension (e.g. the first `n`
    /// images); no-op if there are fewer.
    #[must_use]
    pub fn truncate_outer(mut self, n: usize) -> Self {
        if let Some(&outer) = self.dims.first()
            && n < outer
        {
            let inner: usize = self.dims[1..].iter().product();
            self.dims[0] = n;
            self.data.truncate(n * inner);
        }
        self
    }
}

/// The largest array accepted, in bytes (1 GiB), far above MNIST's 47 MB: a header claiming
/// more is an error before anything is read or decompressed.
pub const MAX_BYTES: usize = 1 << 30;

/// Reads an IDX file, gzipped or raw (detected from its first bytes).
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e, super::MNIST_HINT))?;
    parse_idx(std::io::BufReader::new(file), path)
}

/// Parses IDX from any reader (gzipped or raw); `path` only names the source in errors.
pub fn parse_idx(mut reader: impl Read, path: impl Into<PathBuf>) -> Result<IdxArray> {
    let path = path.into();
    let bad = |reason: String| Error::Idx { path: path.clone(), reason };
    let mut head = [0u8; 2];
    let got = read_up_to(&mut reader, &mut head).map_err(|e| bad(e.to_string()))?;
    let chained = std::io::Cursor::new(head[..got].to_vec()).chain(reader);
    if got == 2 && head == [0x1f, 0x8b] {
        parse_plain(flate2::read::MultiGzDecoder::new(chained), &bad)
    } else {
        parse_plain(chained, &bad)
    }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn parse_plain(mut reader: impl Read, bad: &dyn Fn(String) -> Error) -> Result<IdxArray> {
    let io = |e: std::io::Error| bad(format!("cannot decode: {e}"));
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut reader, &mut magic).map_err(io)?;
    if got < 4 {
        return Err(bad(format!("file is {got} bytes long, too short for the 4-byte magic number")));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(format!(
            "magic number {:02x}{:02x}{:02x}{:02x} does not start with two zero bytes",
            magic[0], magic[1], magic[2], magic[3]
        )));
    }
    if magic[2] != 0x08 {
        return Err(bad(format!(
            "element type 0x{:02x} is not supported (only 0x08, unsigned bytes)",
            magic[2]
        )));
    }
    let ndims = usize::from(magic[3]);
    if ndims == 0 {
        return Err(bad("zero dimensions".into()));
    }
    let mut raw = vec![0u8; 4 * ndims];
    if read_up_to(&mut reader, &mut raw).map_err(io)? < raw.len() {
        return Err(bad(format!("truncated header: {ndims} dimensions announced")));
    }
    let dims: Vec<usize> =
        raw.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let len =
        dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= MAX_BYTES).ok_or_else(
            || bad(format!("dimensions {dims:?} are too large: more than the limit of {MAX_BYTES} bytes")),
        )?;
    // Grow with what is actually there; never pre-allocate what the header merely claims.
    let mut data = Vec::with_capacity(len.min(1 << 20));
    reader.by_ref().take(len as u64).read_to_end(&mut data).map_err(io)?;
    if data.len() < len {
        return Err(bad(format!(
            "truncated: dimensions {dims:?} need {len} bytes of data, the file has {}",
            data.len()
        )));
    }
    let mut extra = [0u8; 1];
    if read_up_to(&mut reader, &mut extra).map_err(io)? != 0 {
        return Err(bad(format!(
            "trailing bytes after the {len} bytes of data that dimensions {dims:?} describe"
        )));
    }
    Ok(IdxArray { dims, data })
}

/// Reads an IDX image file (`[count, rows, cols]`) as a `(rows·cols) × count` matrix with
/// pixels scaled to [0, 1].
pub fn read_images(path: impl AsRef<Path>) -> Result<DMatrix<f32>> {
    let path = path.as_ref();
    images_from(read_idx(path)?, path)
}

/// Turns a decoded image array into a `(rows·cols) × count` matrix scaled to [0, 1].
pub fn images_from(array: IdxArray, path: impl Into<PathBuf>) -> Result<DMatrix<f32>> {
    let &[count, rows, cols] = array.dims.as_slice() else {
        return Err(Error::Idx {
            path: path.into(),
            reason: format!("an image file has 3 dimensions (count, rows, cols), this one {:?}", array.dims),
        });
    };
    let data = array.data.iter().map(|&p| f32::from(p) / 255.0).collect();
    Ok(DMatrix::from_vec(rows * cols, count, data))
}

/// Reads an IDX label file (`[count]`).
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<usize>> {
    let path = path.as_ref();
    labels_from(read_idx(path)?, path)
}

/// Turns a decoded label array into labels.
pub fn labels_from(array: IdxArray, path: impl Into<PathBuf>) -> Result<Vec<usize>> {
    if array.dims.len() != 1 {
        return Err(Error::Idx {
            path: path.into(),
            reason: format!("a label file has 1 dimension, this one {:?}", array.dims),
        });
    }
    Ok(array.data.iter().map(|&l| usize::from(l)).collect())
}

/// Writes `array` as raw (uncompressed) IDX bytes: the inverse of [`parse_idx`].
#[must_use]
pub fn to_bytes(array: &IdxArray) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, array.dims.len() as u8];
    for &d in &array.dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&array.data);
    out
}
