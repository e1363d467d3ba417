//! `tomo metrics --plot FILE.svg|FILE.png`: the table's series as charts,
//! one panel per figure, one line per subject (plotters). The SVG carries
//! titles, axes and a legend; the PNG the same panels and lines without
//! text (plotters draws bitmap text only with a font engine and a font
//! file, which tomo does not ship: see ARCHITECTURE.md).

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::metrics_view::{human, label, subject_name};
use crate::error::{Error, Result, Usage};
use crate::model::metrics::{Figure, Series};

/// Width of a chart file; each panel row takes [`PANEL_HEIGHT`].
pub const WIDTH: u32 = 1200;
pub const PANEL_HEIGHT: u32 = 260;

/// The chart's format, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(Usage::invalid("--plot", path.display().to_string(), "the file must end in .svg or .png").into()),
        }
    }
}

/// The panels: series grouped by figure, in figure order, empty ones left out.
fn panels(series: &[Series]) -> Vec<(Figure, Vec<&Series>)> {
    let mut by: BTreeMap<Figure, Vec<&Series>> = BTreeMap::new();
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        by.entry(s.figure).or_default().push(s);
    }
    by.into_iter().collect()
}

/// The size of the chart of `series`: two panels a row.
pub fn size(series: &[Series]) -> (u32, u32) {
    let n = panels(series).len().max(1) as u32;
    (WIDTH, n.div_ceil(2) * PANEL_HEIGHT)
}

type DrawResult = std::result::Result<(), String>;

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, series: &[Series], text: bool) -> DrawResult {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let panels = panels(series);
    let rows = panels.len().max(1).div_ceil(2);
    let areas = root.split_evenly((rows, 2));
    for ((figure, lines), area) in panels.iter().zip(areas) {
        let unit = figure.unit();
        let t0 = lines.iter().flat_map(|s| s.points.first()).map(|p| p.at).min().unwrap_or(0);
        let t1 = lines.iter().flat_map(|s| s.points.last()).map(|p| p.at).max().unwrap_or(0).max(t0 + 1);
        let top =
            lines.iter().flat_map(|s| s.points.iter().map(|p| p.max)).filter(|v| v.is_finite()).fold(0.0, f64::max);
        let top = if top > 0.0 { top * 1.1 } else { 1.0 };
        let mut b = ChartBuilder::on(&area);
        b.margin(12);
        if text {
            let title = format!("{} ({})", label(*figure), figure.name());
            b.caption(title, ("sans-serif", 16)).x_label_area_size(24).y_label_area_size(72);
        }
        let mut chart = b.build_cartesian_2d(0f64..(t1 - t0) as f64 / 60.0, 0f64..top).map_err(e)?;
        if text {
            chart
                .configure_mesh()
                .x_desc("minutes")
                .x_labels(6)
                .y_labels(5)
                .y_label_formatter(&|v| human(*v, unit))
                .draw()
                .map_err(e)?;
        } else {
            chart.plotting_area().fill(&RGBColor(248, 248, 248)).map_err(e)?;
        }
        for (i, s) in lines.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points = s
                .points
                .iter()
                .filter(|p| p.avg.is_finite())
                .map(|p| ((p.at - t0) as f64 / 60.0, p.avg))
                .collect::<Vec<_>>();
            let drawn = chart.draw_series(LineSeries::new(points, color.stroke_width(2))).map_err(e)?;
            if text {
                drawn
                    .label(subject_name(&s.subject))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            }
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(e)?;
        }
    }
    root.present().map_err(e)
}

/// The chart as SVG text.
pub fn svg(series: &[Series]) -> std::result::Result<String, String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size(series)).into_drawing_area();
        draw(root, series, true)?;
    }
    Ok(out)
}

/// The chart as a PNG file at `path`.
pub fn png(series: &[Series], path: &Path) -> Result<()> {
    let root = BitMapBackend::new(path, size(series)).into_drawing_area();
    draw(root, series, false).map_err(|e| Error::write(path.display(), std::io::Error::other(e)))
}

/// Writes the chart of `series` to `path`, as its extension says.
pub fn write(series: &[Series], path: &Path) -> Result<()> {
    match Format::of(path)? {
        Format::Svg => {
            let text = svg(series).map_err(|e| Error::write(path.display(), std::io::Error::other(e)))?;
            std::fs::write(path, text).map_err(|e| Error::write(path.display(), e))
        }
        Format::Png => png(series, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::metrics::{Point, Subject};

    fn series(server: &str, figure: Figure, values: &[f64]) -> Series {
        let subject = Subject { server: server.into(), app: None, service: None, device: None };
        Series {
            subject,
            figure,
            points: values.iter().enumerate().map(|(i, v)| Point::raw(60 * i as i64, *v)).collect(),
        }
    }

    #[test]
    fn svg_has_a_panel_per_figure_and_a_legend() {
        let all = [
            series("web1", Figure::HostCpuRatio, &[0.1, 0.5, 0.3]),
            series("web2", Figure::HostCpuRatio, &[0.2, 0.2, 0.9]),
            series("web1", Figure::HostMemoryUsedBytes, &[1e9, 2e9]),
            series("web1", Figure::HostLoad1, &[]),
        ];
        assert_eq!(size(&all), (WIDTH, PANEL_HEIGHT));
        let text = svg(&all).unwrap();
        assert!(text.starts_with("<svg") && text.contains("width=\"1200\"") && text.contains("height=\"260\""));
        assert!(text.contains("cpu (host_cpu_ratio)") && text.contains("web2") && text.contains("GiB"), "{text}");
        assert!(!text.contains("host_load1"));
        assert_eq!(text.matches("stroke-width=\"2\"").count(), 3 + 3, "three lines and three legend marks: {text}");
    }

    #[test]
    fn bad_extensions_and_empty_series_do_not_panic() {
        assert!(Format::of(Path::new("a.jpg")).is_err());
        assert!(Format::of(Path::new("a")).is_err());
        assert_eq!(Format::of(Path::new("A.PNG")).unwrap(), Format::Png);
        assert!(svg(&[]).unwrap().contains("<svg"));
        let flat = [series("x", Figure::ContainerRestarts, &[0.0]), series("y", Figure::HostCpuRatio, &[f64::NAN])];
        assert!(svg(&flat).is_ok());
    }

    #[test]
    fn png_has_the_chart_size() {
        let dir = std::env::temp_dir().join(format!("tomo-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.png");
        let all = [series("a", Figure::HostCpuRatio, &[0.1, 0.5]), series("a", Figure::HostLoad1, &[1.0, 2.0])];
        write(&all, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), WIDTH);
        assert_eq!(u32::from_be_bytes(bytes[20..24].try_into().unwrap()), PANEL_HEIGHT);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
