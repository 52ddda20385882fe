//! The dashboard's chart: transactions per second and block interval over the recent blocks,
//! computed here and drawn as inline SVG on the server, so the page shows it without scripts.
//!
//! The dashboard's script (`templates/dashboard.js`) redraws the same chart as blocks arrive; it
//! follows the same rules and geometry, which this module fixes:
//! - tx/s at a block is the transactions of the up to [`RATE_WINDOW_BLOCKS`] blocks ending at it
//!   over the time since the block before that window, so one block sealed a millisecond after
//!   its parent does not spike the line;
//! - the interval at a block is its timestamp minus its parent's (0 if the proposer's clock was
//!   behind);
//! - both only ever span consecutive heights: after a gap in the recent list (a catch-up the
//!   list was not told about) the computation starts again.

use std::fmt::Write as _;

use crate::explorer::format::figure;
use crate::recent::BlockSummary;

/// How many blocks one tx/s figure spans at most.
pub const RATE_WINDOW_BLOCKS: usize = 10;

/// The SVG's coordinate space (its `viewBox`); the page scales it to the screen's width.
pub const WIDTH: u32 = 600;
pub const HEIGHT: u32 = 240;
/// Where the plots start and end horizontally, leaving room on the left for the scale.
pub const PLOT_LEFT: u32 = 52;
pub const PLOT_RIGHT: u32 = 592;
/// The height of each of the two panels, and where each starts.
pub const PANEL_HEIGHT: u32 = 76;
pub const PANEL_TOPS: [u32; 2] = [22, 130];

/// One block as the chart needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub height: u64,
    pub timestamp_ms: u64,
    pub tx_count: u64,
}

impl From<&BlockSummary> for Sample {
    fn from(b: &BlockSummary) -> Self {
        Sample { height: b.height, timestamp_ms: b.timestamp_ms, tx_count: u64::from(b.tx_count) }
    }
}

/// A value plotted at a block's height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub height: u64,
    pub value: f64,
}

/// For each sample (oldest first, heights increasing), the index where its run of consecutive
/// heights starts.
fn run_starts(samples: &[Sample]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(samples.len());
    for (i, s) in samples.iter().enumerate() {
        let start = match i {
            0 => 0,
            _ if samples[i - 1].height.checked_add(1) == Some(s.height) => starts[i - 1],
            _ => i,
        };
        starts.push(start);
    }
    starts
}

/// Transactions per second over the block `from` (exclusive) to `to` (inclusive); `None` when
/// no time passed between them, where no rate can be measured.
fn rate(samples: &[Sample], from: usize, to: usize) -> Option<f64> {
    let span_ms = samples[to].timestamp_ms.saturating_sub(samples[from].timestamp_ms);
    if span_ms == 0 {
        return None;
    }
    let txs: u64 = samples[from + 1..=to].iter().map(|s| s.tx_count).sum();
    Some(txs as f64 * 1000.0 / span_ms as f64)
}

/// tx/s at each block that has at least one parent in its run (see the module header).
pub fn tx_rates(samples: &[Sample]) -> Vec<Point> {
    let starts = run_starts(samples);
    (0..samples.len())
        .filter_map(|i| {
            let from = starts[i].max(i.saturating_sub(RATE_WINDOW_BLOCKS));
            if from == i {
                return None;
            }
            rate(samples, from, i).map(|value| Point { height: samples[i].height, value })
        })
        .collect()
}

/// Milliseconds since the parent, at each block whose parent is in the list.
pub fn block_intervals(samples: &[Sample]) -> Vec<Point> {
    let starts = run_starts(samples);
    (1..samples.len())
        .filter(|&i| starts[i] < i)
        .map(|i| Point {
            height: samples[i].height,
            value: samples[i].timestamp_ms.saturating_sub(samples[i - 1].timestamp_ms) as f64,
        })
        .collect()
}

/// The dashboard's two headline figures, over the newest run of consecutive blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub tx_per_sec: Option<f64>,
    pub block_interval_ms: Option<f64>,
}

pub fn summary(samples: &[Sample]) -> Summary {
    let none = Summary { tx_per_sec: None, block_interval_ms: None };
    let Some(last) = samples.len().checked_sub(1) else {
        return none;
    };
    let first = run_starts(samples)[last];
    if first == last {
        return none;
    }
    let span_ms = samples[last].timestamp_ms.saturating_sub(samples[first].timestamp_ms);
    Summary { tx_per_sec: rate(samples, first, last), block_interval_ms: Some(span_ms as f64 / (last - first) as f64) }
}

/// The top of a plot's scale: the smallest 1, 2 or 5 times a power of ten at or above `max`
/// (1 for an empty or all-zero plot), so the scale reads as a round number.
pub fn nice_ceiling(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let mut power = 10f64.powf(max.log10().floor());
    // log10 may land just below an exact power of ten; step up until 10x covers `max`.
    while power * 10.0 < max {
        power *= 10.0;
    }
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|c| *c >= max).unwrap_or(10.0 * power)
}

/// One panel of the chart, ready for the template.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// `tps` or `interval`: the script finds the panel by it.
    pub id: &'static str,
    pub title: &'static str,
    pub top: u32,
    /// The top of the scale, as text.
    pub max_label: String,
    /// The newest value, as text (`–` when there is none).
    pub last_label: String,
    /// The SVG polyline's `points`.
    pub points: String,
}

impl Panel {
    /// The y coordinate of the panel's bottom edge (its zero line).
    pub fn bottom(&self) -> u32 {
        self.top + PANEL_HEIGHT
    }
}

/// The chart as the dashboard template draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub panels: Vec<Panel>,
    /// The samples as `height:timestamp_ms:tx_count` items joined by commas, for the script
    /// to continue from.
    pub series: String,
    /// The height range on the x axis, as text (empty when there are no samples).
    pub first_height: String,
    pub last_height: String,
    pub summary: Summary,
}

impl Chart {
    /// Builds the chart of `samples`, oldest first with increasing heights.
    pub fn new(samples: &[Sample]) -> Chart {
        let (first, last) = match (samples.first(), samples.last()) {
            (Some(f), Some(l)) => (f.height, l.height),
            _ => (0, 0),
        };
        let x = |height: u64| -> f64 {
            let plot_width = f64::from(PLOT_RIGHT - PLOT_LEFT);
            if last == first {
                return f64::from(PLOT_LEFT) + plot_width / 2.0;
            }
            f64::from(PLOT_LEFT) + plot_width * (height - first) as f64 / (last - first) as f64
        };
        let panel = |id, title, top: u32, points: Vec<Point>| {
            let ceiling = nice_ceiling(points.iter().map(|p| p.value).fold(0.0, f64::max));
            let mut coords = String::new();
            for p in &points {
                let y = f64::from(top) + f64::from(PANEL_HEIGHT) * (1.0 - p.value / ceiling);
                let _ = write!(coords, "{}{:.1},{:.1}", if coords.is_empty() { "" } else { " " }, x(p.height), y);
            }
            Panel {
                id,
                title,
                top,
                max_label: figure(ceiling),
                last_label: points.last().map_or_else(|| "–".to_string(), |p| figure(p.value)),
                points: coords,
            }
        };
        let series = samples
            .iter()
            .map(|s| format!("{}:{}:{}", s.height, s.timestamp_ms, s.tx_count))
            .collect::<Vec<_>>()
            .join(",");
        let has_samples = !samples.is_empty();
        Chart {
            panels: vec![
                panel("tps", "transactions/s", PANEL_TOPS[0], tx_rates(samples)),
                panel("interval", "block interval (ms)", PANEL_TOPS[1], block_intervals(samples)),
            ],
            series,
            first_height: if has_samples { first.to_string() } else { String::new() },
            last_height: if has_samples { last.to_string() } else { String::new() },
            summary: summary(samples),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(height: u64, timestamp_ms: u64, tx_count: u64) -> Sample {
        Sample { height, timestamp_ms, tx_count }
    }

    #[test]
    fn rates_span_a_window_of_blocks() {
        // One block every 100 ms with 5 transactions each: 50 tx/s everywhere.
        let samples: Vec<Sample> = (0..30).map(|h| s(h, 1_000 + h * 100, if h == 0 { 0 } else { 5 })).collect();
        let rates = tx_rates(&samples);
        assert_eq!(rates.len(), 29, "every block but the first has a parent");
        assert_eq!(rates[0], Point { height: 1, value: 50.0 });
        assert!(rates.iter().all(|p| (p.value - 50.0).abs() < 1e-9), "{rates:?}");
        let sum = summary(&samples);
        assert_eq!(sum.tx_per_sec, Some(50.0));
        assert_eq!(sum.block_interval_ms, Some(100.0));
    }

    #[test]
    fn a_burst_is_spread_over_the_window() {
        // 10 empty blocks 100 ms apart, then 1,000 transactions sealed 1 ms later.
        let mut samples: Vec<Sample> = (0..=10).map(|h| s(h, h * 100, 0)).collect();
        samples.push(s(11, 1_001, 1_000));
        let last = *tx_rates(&samples).last().unwrap();
        // Window: blocks 2..=11 over 1001 - 100 ms, not 1,000 tx in 1 ms.
        assert_eq!(last.height, 11);
        assert!((last.value - 1_000.0 * 1000.0 / 901.0).abs() < 1e-9, "{last:?}");
        assert_eq!(block_intervals(&samples).last().unwrap().value, 1.0);
    }

    #[test]
    fn gaps_and_backward_clocks_do_not_make_nonsense() {
        // Heights 5, 6, then a gap to 9, 10; block 6's proposer clock is behind block 5's.
        let samples = [s(5, 1_000, 1), s(6, 900, 2), s(9, 2_000, 3), s(10, 2_500, 4)];
        let intervals = block_intervals(&samples);
        assert_eq!(intervals, vec![Point { height: 6, value: 0.0 }, Point { height: 10, value: 500.0 }]);
        // Block 6 took no measurable time: no rate; block 9 starts a new run: no rate.
        assert_eq!(tx_rates(&samples), vec![Point { height: 10, value: 8.0 }]);
        let sum = summary(&samples);
        assert_eq!(sum, Summary { tx_per_sec: Some(8.0), block_interval_ms: Some(500.0) });
        assert_eq!(summary(&samples[..1]), Summary { tx_per_sec: None, block_interval_ms: None });
        assert_eq!(summary(&[]), Summary { tx_per_sec: None, block_interval_ms: None });
    }

    #[test]
    fn scale_tops_are_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(1.01), 2.0);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
        assert_eq!(nice_ceiling(1001.0), 2000.0);
        assert!((nice_ceiling(0.03) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn plots_fill_the_panel_from_zero_to_the_scale_top() {
        // Intervals of 100 and 200 ms: scale top 200, so 200 is the panel's top edge and 100 its
        // middle; x runs from the first height to the last.
        let chart = Chart::new(&[s(1, 0, 0), s(2, 100, 0), s(3, 300, 0)]);
        let interval = &chart.panels[1];
        assert_eq!(interval.id, "interval");
        assert_eq!(interval.max_label, "200");
        assert_eq!(interval.last_label, "200");
        let top = PANEL_TOPS[1] as f64;
        let mid = top + PANEL_HEIGHT as f64 / 2.0;
        let (left, right) = (PLOT_LEFT as f64, PLOT_RIGHT as f64);
        let centre = (left + right) / 2.0;
        assert_eq!(interval.points, format!("{centre:.1},{mid:.1} {right:.1},{top:.1}"));
        assert_eq!(chart.series, "1:0:0,2:100:0,3:300:0");
        assert_eq!((chart.first_height.as_str(), chart.last_height.as_str()), ("1", "3"));
        // No transactions: the rate is zero, drawn on the zero line of a 0..1 scale.
        let tps = &chart.panels[0];
        assert_eq!(tps.max_label, "1.0");
        assert!(tps.points.ends_with(&format!("{right:.1},{:.1}", tps.bottom() as f64)), "{}", tps.points);
    }

    #[test]
    fn an_empty_chart_has_no_points() {
        let chart = Chart::new(&[]);
        assert!(chart.panels.iter().all(|p| p.points.is_empty() && p.last_label == "–"));
        assert!(chart.series.is_empty() && chart.first_height.is_empty());
    }
}
