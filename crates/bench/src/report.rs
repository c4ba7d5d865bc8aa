//! The results table: one row per measure, with its target and whether it was met, printed as
//! Markdown so it can be pasted into BENCHMARKS.md as it is.

use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A measure without a target.
    Info,
    Met,
    Missed,
    /// Something that must always hold (nothing lost, every request answered) did not.
    Failed,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Info => "",
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::Failed => "FAILED",
        }
    }
}

struct Row {
    scenario: String,
    measure: String,
    value: String,
    target: String,
    verdict: Verdict,
}

#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
    /// In smoke mode performance targets are shown but not judged (debug builds, tiny loads).
    targets_informative: bool,
    /// Added to every scenario name while set: which bus the rows were measured on, when a
    /// run measures more than one.
    section: Option<&'static str>,
}

impl Report {
    pub fn new(targets_informative: bool) -> Self {
        Self {
            rows: Vec::new(),
            targets_informative,
            section: None,
        }
    }

    /// Labels the rows that follow (`1 push throughput (cluster)`), or stops labelling.
    pub fn set_section(&mut self, section: Option<&'static str>) {
        self.section = section;
    }

    /// A measure without a target.
    pub fn info(&mut self, scenario: &str, measure: &str, value: impl Into<String>) {
        self.push(
            scenario,
            measure,
            value.into(),
            String::new(),
            Verdict::Info,
        );
    }

    /// A performance measure against its target.
    pub fn target(
        &mut self,
        scenario: &str,
        measure: &str,
        value: impl Into<String>,
        target: &str,
        met: bool,
    ) {
        let verdict = match (self.targets_informative, met) {
            (true, _) => Verdict::Info,
            (false, true) => Verdict::Met,
            (false, false) => Verdict::Missed,
        };
        self.push(scenario, measure, value.into(), target.into(), verdict);
    }

    /// Something that must hold in every run, smoke or not.
    pub fn check(&mut self, scenario: &str, measure: &str, value: impl Into<String>, ok: bool) {
        let verdict = if ok { Verdict::Met } else { Verdict::Failed };
        self.push(scenario, measure, value.into(), "all".into(), verdict);
    }

    /// A scenario that could not complete.
    pub fn error(&mut self, scenario: &str, error: &anyhow::Error) {
        self.push(
            scenario,
            "completed",
            format!("no: {error:#}"),
            "yes".into(),
            Verdict::Failed,
        );
    }

    fn push(
        &mut self,
        scenario: &str,
        measure: &str,
        value: String,
        target: String,
        verdict: Verdict,
    ) {
        let scenario = match self.section {
            Some(section) => format!("{scenario} ({section})"),
            None => scenario.to_owned(),
        };
        eprintln!("  {scenario} | {measure}: {value} {}", verdict.label());
        self.rows.push(Row {
            scenario,
            measure: measure.into(),
            value,
            target,
            verdict,
        });
    }

    pub fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.verdict == Verdict::Failed)
    }

    pub fn missed(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Missed)
            .count()
    }

    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let header = ["Scenario", "Measure", "Value", "Target", ""];
        let cells: Vec<[&str; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.scenario.as_str(),
                    r.measure.as_str(),
                    r.value.as_str(),
                    r.target.as_str(),
                    r.verdict.label(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |out: &mut String, row: &[&str; 5]| {
            out.push('|');
            for (cell, width) in row.iter().zip(widths) {
                let _ = write!(out, " {cell:<width$} |");
            }
            out.push('\n');
        };
        line(&mut out, &header);
        out.push('|');
        for width in widths {
            let _ = write!(out, "{}|", "-".repeat(width + 2));
        }
        out.push('\n');
        for row in &cells {
            line(&mut out, row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_table_and_verdicts() {
        let mut report = Report::default();
        report.info("push", "requests/s", "31000");
        report.target("push", "p99", "4 ms", "< 10 ms", true);
        assert!(!report.failed());
        report.check("e2e", "lost", "1", false);
        assert!(report.failed());
        let table = report.markdown();
        assert_eq!(table.lines().count(), 5);
        assert!(table
            .lines()
            .all(|l| l.starts_with('|') && l.ends_with('|')));
        assert!(table.contains("FAILED"));
    }

    #[test]
    fn a_section_labels_the_rows_measured_in_it() {
        let mut report = Report::default();
        report.info("push", "requests/s", "1");
        report.set_section(Some("cluster"));
        report.info("push", "requests/s", "2");
        report.set_section(None);
        report.info("compare", "requests/s", "1 / 2");
        let scenarios: Vec<&str> = report.rows.iter().map(|r| r.scenario.as_str()).collect();
        assert_eq!(scenarios, ["push", "push (cluster)", "compare"]);
    }
}
