//! Draws the sweep measured by `throughput --sweep FILE.csv` as an SVG:
//! packets/s of v6fw and of the baseline against batch size (left) and
//! against writer rate (right), both x axes logarithmic.
//!
//! ```text
//! cargo run -p v6fw-benches --bin plot -- docs/throughput.csv docs/throughput.svg
//! ```
//! Hand-written SVG from the measured numbers: no plotting dependency.

use std::fmt::Write as _;
use std::process::ExitCode;

/// One CSV row: series, x, v6fw packets/s, baseline packets/s.
struct Row {
    series: String,
    x: f64,
    v6fw: f64,
    baseline: f64,
}

fn parse(text: &str) -> Result<Vec<Row>, String> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: usize| -> Result<f64, String> {
                f.get(i)
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| format!("bad line {l:?}"))
            };
            Ok(Row {
                series: f.first().map(|s| s.to_string()).unwrap_or_default(),
                x: num(1)?,
                v6fw: num(2)?,
                baseline: num(3)?,
            })
        })
        .collect()
}

const W: f64 = 420.0;
const H: f64 = 300.0;
const PAD: f64 = 60.0;

/// Draws one panel at horizontal offset `ox`.
fn panel(svg: &mut String, ox: f64, title: &str, xlabel: &str, rows: &[&Row]) {
    // Logarithmic x; a 0 (no writer) is drawn one decade left of the
    // smallest positive x.
    let min_pos = rows
        .iter()
        .filter(|r| r.x > 0.0)
        .fold(f64::MAX, |m, r| m.min(r.x.log10()));
    let lx = |x: f64| if x > 0.0 { x.log10() } else { min_pos - 1.0 };
    let (xmin, xmax) = rows.iter().fold((f64::MAX, f64::MIN), |(a, b), r| {
        (a.min(lx(r.x)), b.max(lx(r.x)))
    });
    let ymax = rows
        .iter()
        .fold(1.0f64, |m, r| m.max(r.v6fw).max(r.baseline))
        * 1.1;
    let px = |x: f64| ox + PAD + (lx(x) - xmin) / (xmax - xmin).max(1e-9) * (W - 1.5 * PAD);
    let py = |y: f64| H - PAD + 20.0 - y / ymax * (H - 1.6 * PAD);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" font-size="14" text-anchor="middle">{title}</text>"#,
        ox + W / 2.0
    );
    let _ = write!(
        svg,
        r#"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="black"/><line x1="{0}" y1="{1}" x2="{0}" y2="35" stroke="black"/>"#,
        ox + PAD,
        py(0.0),
        ox + W - PAD / 2.0
    );
    for i in 0..=4 {
        let y = ymax / 1.1 * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="10" text-anchor="end">{:.1}M</text><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            ox + PAD - 4.0,
            py(y) + 3.0,
            y / 1e6,
            ox + PAD,
            py(y),
            ox + W - PAD / 2.0,
            py(y)
        );
    }
    for r in rows {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
            px(r.x),
            py(0.0) + 14.0,
            r.x
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="middle">{xlabel}</text>"#,
        ox + W / 2.0,
        H - 8.0
    );
    for (color, pick) in [("#1f77b4", 0), ("#d62728", 1)] {
        let pts: Vec<String> = rows
            .iter()
            .map(|r| {
                let y = if pick == 0 { r.v6fw } else { r.baseline };
                format!("{:.1},{:.1}", px(r.x), py(y))
            })
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(svg, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
        }
    }
}

fn render(rows: &[Row]) -> String {
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"#,
        2.0 * W,
        H + 20.0
    );
    let batch: Vec<&Row> = rows.iter().filter(|r| r.series == "batch").collect();
    let writer: Vec<&Row> = rows.iter().filter(|r| r.series == "writer_rate").collect();
    panel(
        &mut svg,
        0.0,
        "packets/s vs batch size",
        "packets per batch (one pin per batch)",
        &batch,
    );
    panel(
        &mut svg,
        W,
        "packets/s vs writer rate",
        "port changes per second (batch 1024)",
        &writer,
    );
    let _ = write!(
        svg,
        r##"<rect x="{0}" y="{1}" width="12" height="4" fill="#1f77b4"/><text x="{2}" y="{3}" font-size="11">v6fw</text><rect x="{4}" y="{1}" width="12" height="4" fill="#d62728"/><text x="{5}" y="{3}" font-size="11">etherparse + RwLock&lt;HashSet&gt;</text>"##,
        W - 150.0,
        H + 6.0,
        W - 134.0,
        H + 11.0,
        W - 90.0,
        W - 74.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: plot SWEEP.csv OUT.svg");
        return ExitCode::FAILURE;
    };
    let rows = match std::fs::read_to_string(input)
        .map_err(|e| e.to_string())
        .and_then(|t| parse(&t))
    {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(output, render(&rows)) {
        eprintln!("error: {output}: {e}");
        return ExitCode::FAILURE;
    }
    println!("wrote {output}");
    ExitCode::SUCCESS
}
