//! Bar charts for the stats page, placed here and drawn by the template as inline SVG:
//! no script, and the template only writes numbers and class names.

use crate::web::pages::{Bar, BarRow, Chart};

const WIDTH: u32 = 640;
const LABEL_WIDTH: u32 = 200;
/// Room right of the longest bar for its total.
const TOTAL_WIDTH: u32 = 70;
const ROW_HEIGHT: u32 = 40;
const BAR_HEIGHT: u32 = 24;

/// One row to draw: its label and its segments as (CSS class, value), left to right.
pub struct RowSpec {
    pub label: String,
    pub segments: Vec<(&'static str, i64)>,
}

/// Horizontal bars, one row each, segments stacked; every row on the same scale, so
/// that the longest total fills the width.
pub fn bar_chart(rows: Vec<RowSpec>) -> Chart {
    let area = WIDTH - LABEL_WIDTH - TOTAL_WIDTH;
    let totals: Vec<i64> = rows
        .iter()
        .map(|row| row.segments.iter().map(|(_, v)| (*v).max(0)).sum())
        .collect();
    let largest = totals.iter().copied().max().unwrap_or(0).max(1);
    let scaled = |value: i64| -> u32 {
        // Both fit easily: counts times a few hundred pixels.
        let pixels = (value.max(0) as u128 * u128::from(area)) / largest as u128;
        u32::try_from(pixels).unwrap_or(area)
    };
    let rows = rows
        .into_iter()
        .zip(totals)
        .enumerate()
        .map(|(index, (row, total))| {
            let top = index as u32 * ROW_HEIGHT;
            let bar_y = top + (ROW_HEIGHT - BAR_HEIGHT) / 2;
            let mut x = LABEL_WIDTH;
            let bars = row
                .segments
                .into_iter()
                .filter(|(_, value)| *value > 0)
                .map(|(class, value)| {
                    let width = scaled(value).max(1);
                    let bar = Bar {
                        x,
                        y: bar_y,
                        width,
                        height: BAR_HEIGHT,
                        class: class.to_string(),
                        value,
                    };
                    x += width;
                    bar
                })
                .collect();
            BarRow {
                label: row.label,
                label_y: bar_y + BAR_HEIGHT - 7,
                bars,
                total_x: x + 8,
                total,
            }
        })
        .collect::<Vec<_>>();
    Chart {
        width: WIDTH,
        height: (rows.len() as u32).max(1) * ROW_HEIGHT,
        label_width: LABEL_WIDTH,
        rows,
    }
}

/// A funnel: one row a stage, each bar centred on the same axis and scaled to the widest
/// (the first stage), so the rows narrow as people drop out.
pub fn funnel_chart(rows: Vec<RowSpec>) -> Chart {
    let mut chart = bar_chart(rows);
    let area = WIDTH - LABEL_WIDTH - TOTAL_WIDTH;
    for row in &mut chart.rows {
        let width: u32 = row.bars.iter().map(|bar| bar.width).sum();
        let shift = (area - width.min(area)) / 2;
        for bar in &mut row.bars {
            bar.x += shift;
        }
        row.total_x += shift;
    }
    chart
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_funnel_centres_its_rows_on_one_axis() {
        let chart = funnel_chart(vec![
            RowSpec {
                label: "requested".into(),
                segments: vec![("bar-funnel", 4)],
            },
            RowSpec {
                label: "confirmed".into(),
                segments: vec![("bar-code", 1), ("bar-button", 1)],
            },
        ]);
        let area = WIDTH - LABEL_WIDTH - TOTAL_WIDTH;
        let first = &chart.rows[0].bars[0];
        assert_eq!((first.x, first.width), (LABEL_WIDTH, area));
        let second = &chart.rows[1].bars;
        let centre = |x: u32, width: u32| 2 * x + width;
        assert_eq!(
            centre(second[0].x, second[0].width + second[1].width),
            centre(first.x, first.width),
            "both rows share the centre"
        );
        assert_eq!(second[1].x, second[0].x + second[0].width);
    }

    #[test]
    fn bars_share_one_scale_and_stack_left_to_right() {
        let chart = bar_chart(vec![
            RowSpec {
                label: "a".into(),
                segments: vec![("x", 10), ("y", 10)],
            },
            RowSpec {
                label: "b".into(),
                segments: vec![("x", 5), ("y", 0)],
            },
        ]);
        let area = WIDTH - LABEL_WIDTH - TOTAL_WIDTH;
        let a = &chart.rows[0];
        assert_eq!(a.bars.len(), 2);
        assert_eq!(a.bars[0].x, LABEL_WIDTH);
        assert_eq!(
            a.bars[0].width + a.bars[1].width,
            area,
            "the largest fills the area"
        );
        assert_eq!(a.bars[1].x, LABEL_WIDTH + a.bars[0].width);
        let b = &chart.rows[1];
        assert_eq!(b.bars.len(), 1, "an empty segment draws nothing");
        assert_eq!(b.bars[0].width, area / 4);
        assert_eq!(b.total, 5);
        assert_eq!(chart.height, 2 * ROW_HEIGHT);
    }

    #[test]
    fn an_empty_store_draws_no_bars_and_does_not_divide_by_zero() {
        let chart = bar_chart(vec![RowSpec {
            label: "a".into(),
            segments: vec![("x", 0)],
        }]);
        assert!(chart.rows[0].bars.is_empty());
        assert_eq!(chart.rows[0].total, 0);
    }
}
