//! `coreloop-load merge`: reports from several processes or machines that
//! ran at the same time, combined exactly (histograms merged, never
//! percentiles averaged).

use super::{Report, Tally};

/// One report of all of `reports`; an error names the report that could not be read.
pub fn merge(reports: &[Report]) -> Result<Report, String> {
    let mut total: Option<Tally> = None;
    for (i, r) in reports.iter().enumerate() {
        let t = Tally::from_report(r).map_err(|e| format!("report {}: {e}", i + 1))?;
        match total.as_mut() {
            None => total = Some(t),
            Some(sum) => sum.add(&t),
        }
    }
    let mut sum = total.ok_or_else(|| "nothing to merge".to_string())?;
    let mut targets: Vec<&str> = reports.iter().map(|r| r.target.as_str()).collect();
    targets.dedup();
    if targets.len() > 1 {
        sum.notes.push(format!(
            "merged reports name different targets: {}",
            targets.join(", ")
        ));
    }
    sum.settings.connections = sum.requested_connections;
    sum.settings.threads = sum.threads;
    sum.settings.processes = sum.processes;
    sum.settings.rate_per_s = sum.rate_per_s;
    Ok(sum.report())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::Hist;
    use crate::report::SecondReport;

    fn report(target: &str) -> Report {
        let mut r = Report {
            target: target.to_string(),
            merged: 1,
            processes: 1,
            ..Report::default()
        };
        r.histograms.latency = Hist::default().encode();
        r.histograms.connect_time = Hist::default().encode();
        r
    }

    #[test]
    fn refuses_inconsistent_or_oversized_input() {
        assert!(merge(&[]).is_err());
        let mut lying = report("a");
        lying.requests.completed = 5;
        let e = merge(&[lying]).unwrap_err();
        assert!(
            e.contains("report 1") && e.contains("5 requests completed"),
            "{e}"
        );
        let mut far = report("a");
        far.series.push(SecondReport {
            t_s: u64::MAX,
            histogram: Hist::coarse().encode(),
            ..SecondReport::default()
        });
        assert!(merge(&[far]).unwrap_err().contains("beyond"));
        let mut bad = report("a");
        bad.histograms.connect_time = "???".to_string();
        assert!(merge(&[bad]).is_err());
    }

    #[test]
    fn different_targets_are_noted() {
        let m = merge(&[report("http://a/"), report("http://b/")]).unwrap();
        assert!(
            m.notes.iter().any(|n| n.contains("http://a/, http://b/")),
            "{:?}",
            m.notes
        );
        assert_eq!(m.merged, 2);
    }
}
