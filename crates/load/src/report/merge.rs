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
    sum.settings.connections = sum.requested_connections;
    sum.settings.threads = sum.threads;
    sum.settings.processes = sum.processes;
    sum.settings.rate_per_s = sum.rate_per_s;
    Ok(sum.report())
}
