//! Pictures as PNG files: grids of digits with captions, and training curves.
//!
//! Deliberately tiny: an RGB canvas, a 3×5 pixel font and straight lines, so the crate needs no
//! font files or plotting stack.

use crate::{Error, Result};
use std::path::Path;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// An RGB image in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

/// Glyphs of the 3×5 font: each row is 3 bits, most significant bit on the left.
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 2, 2],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [3, 4, 4, 4, 3],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [3, 4, 5, 5, 3],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'J' => [1, 1, 1, 5, 2],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'Q' => [2, 5, 5, 6, 3],
        'R' => [6, 5, 6, 5, 5],
        'S' => [3, 4, 2, 1, 6],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        'Z' => [7, 1, 2, 4, 7],
        '.' => [0, 0, 0, 0, 2],
        ',' => [0, 0, 0, 2, 4],
        ':' => [0, 2, 0, 2, 0],
        '-' => [0, 0, 7, 0, 0],
        '/' => [1, 1, 2, 4, 4],
        '%' => [5, 1, 2, 4, 5],
        '(' => [1, 2, 2, 2, 1],
        ')' => [4, 2, 2, 2, 4],
        '=' => [0, 7, 0, 7, 0],
        _ => [0, 0, 0, 0, 0],
    }
}

impl Canvas {
    /// A `width × height` canvas filled with `background`.
    #[must_use]
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        let pixels = background.iter().copied().cycle().take(width * height * 3).collect();
        Canvas { width, height, pixels }
    }

    /// Width in pixels.
    #[must_use]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    #[must_use]
    pub fn height(&self) -> usize {
        self.height
    }

    /// The colour at `(x, y)`, or `None` outside the canvas.
    #[must_use]
    pub fn get(&self, x: usize, y: usize) -> Option<Rgb> {
        (x < self.width && y < self.height).then(|| {
            let i = 3 * (y * self.width + x);
            [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
        })
    }

    /// Sets the pixel at `(x, y)`; points outside the canvas are ignored.
    pub fn set(&mut self, x: i64, y: i64, color: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = 3 * (y as usize * self.width + x as usize);
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    /// Fills the rectangle with corner `(x, y)` and size `w × h`.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: usize, h: usize, color: Rgb) {
        for dy in 0..h as i64 {
            for dx in 0..w as i64 {
                self.set(x + dx, y + dy, color);
            }
        }
    }

    /// Draws a grayscale image (`side × side` values in [0, 1], row-major, 1 = ink) at
    /// `(x, y)`, each pixel as a `scale × scale` block, white ink on black.
    pub fn draw_gray(&mut self, x: i64, y: i64, side: usize, values: &[f32], scale: usize) {
        for (i, &v) in values.iter().enumerate().take(side * side) {
            let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let (r, c) = ((i / side) as i64, (i % side) as i64);
            self.fill_rect(x + c * scale as i64, y + r * scale as i64, scale, scale, [g, g, g]);
        }
    }

    /// Writes `text` with its top-left corner at `(x, y)`, each font pixel `scale` wide.
    /// Returns the width drawn.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, color: Rgb) -> usize {
        let s = scale as i64;
        for (k, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            for (r, bits) in rows.iter().enumerate() {
                for c in 0..3 {
                    if bits & (4 >> c) != 0 {
                        self.fill_rect(x + (k as i64 * 4 + c) * s, y + r as i64 * s, scale, scale, color);
                    }
                }
            }
        }
        text.chars().count() * 4 * scale
    }

    /// A straight line from `(x0, y0)` to `(x1, y1)` (Bresenham).
    pub fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), color: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, color);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Saves as an 8-bit RGB PNG, creating the parent folder if needed.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let wrap = Error::at(path);
        let mut encoder =
            png::Encoder::new(crate::error::create_file(path)?, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let to_io = |e: png::EncodingError| wrap(std::io::Error::other(e));
        let mut writer = encoder.write_header().map_err(to_io)?;
        writer.write_image_data(&self.pixels).map_err(to_io)?;
        writer.finish().map_err(to_io)
    }
}

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];

/// A grid of square grayscale digits (`side × side` each), `columns` per row, each with a
/// caption underneath.
#[must_use]
pub fn digit_grid(images: &[&[f32]], captions: &[String], side: usize, columns: usize) -> Canvas {
    let (scale, pad, caption_h) = (3, 8, 20);
    let cell_w = side * scale + pad;
    let cell_h = side * scale + caption_h + pad;
    let columns = columns.max(1);
    let rows = images.len().div_ceil(columns).max(1);
    let mut canvas = Canvas::new(columns * cell_w + pad, rows * cell_h + pad, [40, 40, 48]);
    for (k, img) in images.iter().enumerate() {
        let x = (pad + (k % columns) * cell_w) as i64;
        let y = (pad + (k / columns) * cell_h) as i64;
        canvas.draw_gray(x, y, side, img, scale);
        if let Some(caption) = captions.get(k) {
            canvas.text(x, y + (side * scale) as i64 + 5, caption, 3, WHITE);
        }
    }
    canvas
}

/// One curve of a [`line_chart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Points `(x, y)`, in order of `x`.
    pub points: &'a [(f64, f64)],
    /// Line colour.
    pub color: Rgb,
}

/// A line chart of `series` with a title, axes and min/max labels.
#[must_use]
pub fn line_chart(title: &str, series: &[Series<'_>], width: usize, height: usize) -> Canvas {
    let mut canvas = Canvas::new(width, height, WHITE);
    let (left, right, top, bottom) = (60i64, 20i64, 40i64, 40i64);
    let (w, h) = (width as i64 - left - right, height as i64 - top - bottom);
    canvas.text(left, 12, title, 3, BLACK);
    let all = series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return canvas;
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-12 {
        y1 = y0 + 1.0;
    }
    let gray = [150, 150, 150];
    canvas.line((left, top), (left, top + h), gray);
    canvas.line((left, top + h), (left + w, top + h), gray);
    canvas.text(4, top, &format_num(y1), 2, BLACK);
    canvas.text(4, top + h - 10, &format_num(y0), 2, BLACK);
    canvas.text(left, top + h + 8, &format_num(x0), 2, BLACK);
    let label = format_num(x1);
    canvas.text(left + w - 8 * label.len() as i64, top + h + 8, &label, 2, BLACK);
    let to_px = |(x, y): (f64, f64)| {
        (left + ((x - x0) / (x1 - x0) * w as f64) as i64, top + h - ((y - y0) / (y1 - y0) * h as f64) as i64)
    };
    let mut legend_x = left + w / 2;
    for s in series {
        let pts: Vec<_> = s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        for pair in pts.windows(2) {
            canvas.line(to_px(pair[0]), to_px(pair[1]), s.color);
        }
        canvas.fill_rect(legend_x, 14, 12, 6, s.color);
        legend_x += 16 + canvas.text(legend_x + 16, 12, s.name, 2, BLACK) as i64 + 12;
    }
    canvas
}

fn format_num(v: f64) -> String {
    if v.abs() >= 1000.0 || v == v.trunc() { format!("{v:.0}") } else { format!("{v:.3}") }
}

/// A digit as text for a terminal: two characters per pixel, darker to brighter.
#[must_use]
pub fn ascii_digit(values: &[f32], side: usize) -> String {
    const SHADES: [&str; 5] = ["  ", "..", "::", "##", "@@"];
    let mut out = String::new();
    for row in values.chunks(side.max(1)) {
        for &v in row {
            out.push_str(SHADES[((v.clamp(0.0, 1.0) * 4.0).round()) as usize]);
        }
        out.push('\n');
    }
    out
}
