//! Pictures for the examples, drawn with plotters: line charts with labelled axes, ticks, a grid
//! and a legend, and grids of digits with captions.
//!
//! Text uses the DejaVu Sans subset beside this file (ASCII and a few signs, 14 KB; licence in
//! `DEJAVU-LICENSE`), compiled into the program: no font needs to be installed.
//!
//! Shared by the examples through `#[path]`; each uses a part of it.
#![allow(dead_code)]

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::error::Error;
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("DejaVuSans-ascii.ttf");
/// The family name the font is registered under.
const FAMILY: &str = "sans-serif";

/// Colours the examples' series use, readable on white and told apart in print.
pub const RED: RGBColor = RGBColor(200, 40, 40);
pub const BLUE: RGBColor = RGBColor(40, 80, 200);
pub const GREEN: RGBColor = RGBColor(30, 140, 60);

/// A boxed error: plotters' drawing errors are generic over the backend.
pub type ChartResult = Result<(), Box<dyn Error>>;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the shipped font is a valid TrueType file"));
    });
}

/// One line of a chart.
pub struct Series<'a> {
    /// Legend entry.
    pub name: &'a str,
    /// `(x, y)` points, in x order.
    pub points: &'a [(f64, f64)],
    /// Line colour.
    pub color: RGBColor,
}

/// How the y axis is scaled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Logarithmic (every y must be > 0): a loss that falls by orders of magnitude stays
    /// readable after its first steps.
    Log,
}

/// A line chart: title, axis labels, y scale, its series and where their legend goes.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub y_scale: Scale,
    pub series: &'a [Series<'a>],
    pub legend: Legend,
}

/// The corner of a chart its legend takes: the one its lines leave free.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    UpperRight,
    LowerRight,
}

impl LineChart<'_> {
    /// Draws the chart to a PNG file of `width × height` pixels.
    pub fn save_png(&self, path: &Path, (width, height): (u32, u32)) -> ChartResult {
        register_font();
        let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1) =
            points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (mut y0, mut y1) = points()
            .filter(|p| p.1.is_finite() && (self.y_scale == Scale::Linear || p.1 > 0.0))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
        if x0.partial_cmp(&x1) != Some(std::cmp::Ordering::Less) {
            (x0, x1) = (x0.min(0.0), x0.max(0.0) + 1.0);
        }
        if y0.partial_cmp(&y1) != Some(std::cmp::Ordering::Less) {
            (y0, y1) = if y0.is_finite() { (y0 * 0.5, y0 * 2.0 + 1e-9) } else { (0.1, 1.0) };
        }
        match self.y_scale {
            Scale::Linear => {
                let pad = 0.05 * (y1 - y0);
                self.draw(&root, x0..x1, (y0 - pad)..(y1 + pad))
            }
            Scale::Log => self.draw(&root, x0..x1, ((y0 / 1.5)..(y1 * 1.5)).log_scale()),
        }
    }

    fn draw<Y>(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, Shift>,
        x: std::ops::Range<f64>,
        y: Y,
    ) -> ChartResult
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let x_span = (x.start, x.end);
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FAMILY, 26))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x, y)?;
        // Whole-number x (steps, epochs) gets whole-number labels, no more labels than values.
        let whole_x = self.series.iter().flat_map(|s| s.points).all(|p| p.0.fract() == 0.0);
        let distinct_x = (x_span.1 - x_span.0) as usize + 1;
        let x_labels = if whole_x { distinct_x.clamp(2, 10) } else { 10 };
        let x_format = |x: &f64| if whole_x { format!("{x:.0}") } else { short(*x) };
        chart
            .configure_mesh()
            .x_labels(x_labels)
            .y_labels(12)
            .x_label_formatter(&x_format)
            .y_label_formatter(&|y| short(*y))
            .x_desc(self.x_label)
            .y_desc(self.y_label)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for s in self.series {
            let color = s.color;
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))?
                .label(s.name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(match self.legend {
                Legend::UpperRight => SeriesLabelPosition::UpperRight,
                Legend::LowerRight => SeriesLabelPosition::LowerRight,
            })
            .label_font((FAMILY, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    }
}

/// A tick label: three significant digits, no trailing zeros (`0.05`, `1.5`, `200`); a tick
/// that rounding left a hair from zero is `0`.
fn short(value: f64) -> String {
    if value.abs() < 1e-9 {
        return "0".into();
    }
    if !value.is_finite() {
        return format!("{value}");
    }
    let digits = (2 - value.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{value:.digits$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// Draws gray-scale digit images (`side × side`, row-major, values in [0, 1]) in a grid of
/// `columns`, each with its caption below, to a PNG file.
pub fn digit_grid(
    path: &Path,
    images: &[&[f32]],
    captions: &[String],
    side: usize,
    columns: usize,
) -> ChartResult {
    register_font();
    let (scale, caption, pad) = (4, 26, 10);
    let columns = columns.max(1);
    let rows = images.len().div_ceil(columns).max(1);
    let cell = (side * scale + pad, side * scale + caption + pad);
    let size = ((columns * cell.0 + pad) as u32, (rows * cell.1 + pad) as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let style =
        TextStyle::from((FAMILY, 20).into_font()).color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
    for (k, (image, text)) in images.iter().zip(captions).enumerate() {
        let (x0, y0) = ((pad + (k % columns) * cell.0) as i32, (pad + (k / columns) * cell.1) as i32);
        for (i, &v) in image.iter().enumerate() {
            let shade = 255 - (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let (px, py) = (x0 + ((i % side) * scale) as i32, y0 + ((i / side) * scale) as i32);
            let s = scale as i32;
            root.draw(&Rectangle::new([(px, py), (px + s, py + s)], RGBColor(shade, shade, shade).filled()))?;
        }
        let center = x0 + (side * scale / 2) as i32;
        root.draw_text(text, &style, (center, y0 + (side * scale) as i32 + 3))?;
    }
    root.present()?;
    Ok(())
}
