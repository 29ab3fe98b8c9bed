//! Plots for people: a layer × coefficient heatmap of the validation score of each
//! algorithm's sweep, and bars of every condition of a report, as SVG and PNG.
//!
//! Text is drawn with DejaVu Sans from the system (`/usr/share/fonts`, or the file
//! `$MASTEER_FONT` names); plotters measures text with it for both formats, so without
//! it the plots are drawn without labels.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use masteer_algorithms::Selection;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, RGBColor};

use super::report::EvalReport;
use crate::error::{CoreError, Result};

fn font_available() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("MASTEER_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(
                [
                    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                    "/usr/share/fonts/TTF/DejaVuSans.ttf",
                ]
                .iter()
                .map(PathBuf::from),
            )
            .collect();
        for c in candidates {
            if let Ok(bytes) = std::fs::read(&c) {
                let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// A temporary path beside the final one (same extension, so the encoder is chosen
/// by it); plots are drawn there and renamed, never half-written in place.
fn temporary(dir: &Path, stem: &str, ext: &str) -> PathBuf {
    dir.join(format!(".{stem}.{}.tmp.{ext}", std::process::id()))
}

/// Rename the drawn temporary files to `{stem}.{ext}`.
fn publish(dir: &Path, stem: &str, drawn: &[PathBuf]) -> Result<()> {
    for tmp in drawn {
        let ext = tmp.extension().and_then(|e| e.to_str()).unwrap_or("out");
        let dst = dir.join(format!("{stem}.{ext}"));
        std::fs::rename(tmp, &dst).map_err(|e| CoreError::io("renaming into", &dst, e))?;
    }
    Ok(())
}

fn perr(e: impl std::fmt::Display) -> CoreError {
    CoreError::InvalidInput(format!("plotting failed: {e}"))
}

/// Colour of a score in `[lo, hi]` (blue to red).
fn heat(v: f64, lo: f64, hi: f64) -> RGBColor {
    let t = if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.5
    };
    RGBColor(
        (40.0 + 215.0 * t) as u8,
        (60.0 + 80.0 * (1.0 - (2.0 * t - 1.0).abs())) as u8,
        (255.0 - 215.0 * t) as u8,
    )
}

fn draw_heatmap<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    sel: &Selection,
    text: bool,
) -> Result<()> {
    root.fill(&WHITE).map_err(perr)?;
    let mut layers: Vec<usize> = sel.grid.iter().map(|g| g.layer).collect();
    layers.sort_unstable();
    layers.dedup();
    let mut coefs: Vec<f32> = sel.grid.iter().map(|g| g.coefficient).collect();
    coefs.sort_by(f32::total_cmp);
    coefs.dedup();
    let scores: Vec<f64> = sel
        .grid
        .iter()
        .map(|g| g.score)
        .filter(|s| s.is_finite())
        .collect();
    let (lo, hi) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &s| {
            (a.min(s), b.max(s))
        });
    let mut builder = ChartBuilder::on(&root);
    builder.margin(10);
    if text {
        builder
            .caption(title, ("sans-serif", 18))
            .x_label_area_size(40)
            .y_label_area_size(60);
    }
    // Segmented axes: one segment per coefficient (x) and per layer (y), labelled at
    // their centres.
    let mut chart = builder
        .build_cartesian_2d(
            // a segmented range a..b has the segments a..=b
            (0..coefs.len().saturating_sub(1)).into_segmented(),
            (0..layers.len().saturating_sub(1)).into_segmented(),
        )
        .map_err(perr)?;
    let label = |v: &SegmentValue<usize>, names: &dyn Fn(usize) -> Option<String>| match v {
        SegmentValue::CenterOf(i) => names(*i).unwrap_or_default(),
        _ => String::new(),
    };
    if text {
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("coefficient")
            .y_desc("layer")
            .x_labels(coefs.len())
            .y_labels(layers.len())
            .x_label_formatter(&|v| label(v, &|i| coefs.get(i).map(|c| format!("{c}"))))
            .y_label_formatter(&|v| label(v, &|i| layers.get(i).map(|l| l.to_string())))
            .draw()
            .map_err(perr)?;
    }
    let centred =
        TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    for g in &sel.grid {
        let (Some(x), Some(y)) = (
            coefs.iter().position(|c| *c == g.coefficient),
            layers.iter().position(|l| *l == g.layer),
        ) else {
            continue;
        };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [
                    (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                ],
                heat(g.score, lo, hi).filled(),
            )))
            .map_err(perr)?;
        if text {
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{:.3}", g.score),
                    (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                    centred.clone(),
                )))
                .map_err(perr)?;
        }
    }
    root.present().map_err(perr)?;
    Ok(())
}

/// Write `{stem}.svg` and `{stem}.png`: the sweep grid of one algorithm.
pub fn heatmap(dir: &Path, stem: &str, title: &str, selection: &Selection) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| CoreError::io("creating", dir, e))?;
    let text = font_available();
    let (svg, png) = (temporary(dir, stem, "svg"), temporary(dir, stem, "png"));
    draw_heatmap(
        SVGBackend::new(&svg, (640, 480)).into_drawing_area(),
        title,
        selection,
        text,
    )?;
    draw_heatmap(
        BitMapBackend::new(&png, (640, 480)).into_drawing_area(),
        title,
        selection,
        text,
    )?;
    publish(dir, stem, &[svg, png])
}

/// One panel of horizontal bars: a value in [0, 1] per condition.
fn bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    names: &[String],
    values: &[f64],
    colour: RGBColor,
    text: bool,
) -> Result<()> {
    let n = values.len();
    let mut builder = ChartBuilder::on(area);
    builder.margin(10);
    if text {
        builder
            .caption(title, ("sans-serif", 15))
            .x_label_area_size(30)
            .y_label_area_size(if names.is_empty() { 10 } else { 260 });
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..1f64, (0..n.saturating_sub(1)).into_segmented())
        .map_err(perr)?;
    if text {
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(perr)?;
    }
    chart
        .draw_series(values.iter().enumerate().map(|(i, v)| {
            let mut r = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (v.clamp(0.0, 1.0), SegmentValue::Exact(i + 1)),
                ],
                colour.filled(),
            );
            r.set_margin(4, 4, 0, 0);
            r
        }))
        .map_err(perr)?;
    Ok(())
}

/// Write `sweep_{algorithm}.svg|png` for every strategy of `library` that kept its
/// validation sweep.
pub fn strategy_sweeps(
    dir: &Path,
    library: &crate::strategy_library::StrategyLibrary,
) -> Result<()> {
    for s in &library.strategies {
        if let Some(sel) = &s.selection {
            heatmap(dir, &format!("sweep_{}", s.vector.algorithm), &s.name, sel)?;
        }
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    report: &EvalReport,
    text: bool,
) -> Result<()> {
    root.fill(&WHITE).map_err(perr)?;
    let names: Vec<String> = report
        .conditions
        .iter()
        .map(|c| c.condition.clone())
        .collect();
    let behaviour: Vec<f64> = report
        .conditions
        .iter()
        .map(|c| c.behaviour.unwrap_or(0.0))
        .collect();
    let mmlu: Vec<f64> = report
        .conditions
        .iter()
        .map(|c| c.mmlu.unwrap_or(0.0))
        .collect();
    let (left, right) = root.split_horizontally((62).percent_width());
    bar_panel(
        &left,
        "behaviour: share of the wanted answer",
        &names,
        &behaviour,
        RGBColor(60, 110, 200),
        text,
    )?;
    bar_panel(
        &right,
        "MMLU A/B accuracy",
        &[],
        &mmlu,
        RGBColor(240, 150, 50),
        text,
    )?;
    root.present().map_err(perr)?;
    Ok(())
}

/// Write `{stem}.svg` and `{stem}.png`: bars of every condition of a report.
pub fn bars(dir: &Path, stem: &str, report: &EvalReport) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| CoreError::io("creating", dir, e))?;
    let h = 80 + 40 * report.conditions.len() as u32;
    let text = font_available();
    let (svg, png) = (temporary(dir, stem, "svg"), temporary(dir, stem, "png"));
    draw_bars(
        SVGBackend::new(&svg, (900, h)).into_drawing_area(),
        report,
        text,
    )?;
    draw_bars(
        BitMapBackend::new(&png, (900, h)).into_drawing_area(),
        report,
        text,
    )?;
    publish(dir, stem, &[svg, png])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::report::ConditionResult;
    use masteer_algorithms::GridPoint;

    fn selection() -> Selection {
        let mut grid = Vec::new();
        for (i, layer) in [10usize, 20].into_iter().enumerate() {
            for (j, coefficient) in [1.0f32, 2.0, 4.0].into_iter().enumerate() {
                grid.push(GridPoint {
                    layer,
                    coefficient,
                    score: 0.5 + 0.1 * i as f64 + 0.01 * j as f64,
                });
            }
        }
        Selection {
            best: grid[5],
            grid,
        }
    }

    /// Whether text can be checked: the font is there, and under CI (`CI` set, where
    /// `.ci/run` installs `fonts-dejavu-core`) a missing font fails instead of skipping.
    fn text_checkable() -> bool {
        let ok = font_available();
        assert!(
            ok || std::env::var_os("CI").is_none(),
            "DejaVu Sans is missing under CI: .ci/run installs fonts-dejavu-core"
        );
        ok
    }

    #[test]
    fn heatmap_writes_both_formats_with_every_cell_and_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        heatmap(dir.path(), "sweep_x", "a title", &selection()).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("sweep_x.svg")).unwrap();
        let png = std::fs::read(dir.path().join("sweep_x.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        if text_checkable() {
            assert!(svg.contains("a title"));
            // every cell's score is written in it
            for s in ["0.500", "0.520", "0.600", "0.620"] {
                assert!(svg.contains(s), "{s} missing");
            }
        }
        // six cells + the background
        assert!(svg.matches("<rect").count() >= 7, "{svg}");
    }

    #[test]
    fn bars_draws_every_condition() {
        let dir = tempfile::tempdir().unwrap();
        let report = EvalReport {
            issue: "i".into(),
            model: "m".into(),
            notes: vec![],
            conditions: ["unsteered", "mean_difference", "adaptive (hard)"]
                .iter()
                .map(|c| ConditionResult {
                    condition: c.to_string(),
                    behaviour: Some(0.5),
                    mmlu: Some(0.4),
                    ..ConditionResult::default()
                })
                .collect(),
        };
        bars(dir.path(), "bars", &report).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("bars.svg")).unwrap();
        if text_checkable() {
            assert!(svg.contains("adaptive (hard)"));
        }
        assert!(svg.matches("<rect").count() >= 7);
    }
}
