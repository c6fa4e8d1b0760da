//! Draws series as a PNG, in-process: a line per series with its label, the action as a
//! vertical line, the time axis in UTC. The font ships inside the binary (DejaVu Sans, see
//! `assets/fonts/`), so a chart looks the same on every host and needs no system font.

use std::sync::OnceLock;

use plotters::prelude::*;
use time::OffsetDateTime;

use super::{ChartError, Series};

/// The chart's size in pixels: wide enough for a phone's Slack to show it legibly.
pub const WIDTH: u32 = 960;
/// See [`WIDTH`].
pub const HEIGHT: u32 = 480;

/// DejaVu Sans (Bitstream Vera licence), the one face every label uses.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Registers the shipped font under the family name the chart asks for, once per process.
fn font() -> Result<&'static str, ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok("sans-serif")
    } else {
        Err(ChartError::Render(
            "the shipped font could not be read".into(),
        ))
    }
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct Picture<'a> {
    /// The title: the alert and its expression.
    pub title: &'a str,
    /// The lines, each with its label; points are (unix seconds, value).
    pub series: &'a [Series],
    /// When the action happened (unix seconds), drawn as a vertical line; `None` when the
    /// chart shows no action (a step's trend charted before anything was changed).
    pub action: Option<f64>,
    /// The time range shown (unix seconds).
    pub range: (f64, f64),
}

/// The chart as PNG bytes.
pub fn png(picture: &Picture<'_>) -> Result<Vec<u8>, ChartError> {
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    draw(picture, &mut rgb).map_err(|e| ChartError::Render(e.to_string()))?;
    encode(&rgb)
}

fn draw(p: &Picture<'_>, rgb: &mut [u8]) -> Result<(), Box<dyn std::error::Error>> {
    let family = font()?;
    let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (low, high) = value_range(p.series);
    let mut chart = ChartBuilder::on(&root)
        .caption(p.title, (family, 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(p.range.0..p.range.1, low..high)?;
    chart
        .configure_mesh()
        .x_labels(7)
        .x_label_formatter(&|t| utc_label(*t))
        .x_desc("time (UTC)")
        .label_style((family, 12))
        .draw()?;
    for (i, series) in p.series.iter().enumerate() {
        let color = series_color(i);
        chart
            .draw_series(LineSeries::new(
                series.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(series.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    if let Some(at) = p.action {
        let action = RED.stroke_width(2);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(at, low), (at, high)],
                action,
            )))?
            .label(format!("action {}", utc_label(at)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], action));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((family, 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The color of the `i`th series: the palette from its blue on, so that no line shares the
/// action's red.
fn series_color(i: usize) -> RGBAColor {
    Palette99::pick(i + 3).to_rgba()
}

/// The values' range with a margin, so lines do not run along the frame; a flat series
/// gets a band around its value.
fn value_range(series: &[Series]) -> (f64, f64) {
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|(_, v)| *v))
        .filter(|v| v.is_finite());
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if high > low {
        (high - low) * 0.08
    } else {
        low.abs().max(1.0) * 0.1
    };
    (low - pad, high + pad)
}

/// `HH:MM` in UTC.
fn utc_label(unix: f64) -> String {
    // The axis holds whole seconds at most 2^53 apart; rounding is what a label wants.
    #[allow(clippy::cast_possible_truncation)]
    let seconds = unix.round() as i64;
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| format!("{:02}:{:02}", t.hour(), t.minute()))
        .unwrap_or_default()
}

/// RGB pixels as a PNG.
fn encode(rgb: &[u8]) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let fail = |e: png::EncodingError| ChartError::Render(format!("PNG: {e}"));
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(rgb).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
