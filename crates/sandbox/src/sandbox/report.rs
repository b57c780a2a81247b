//! What the end-of-run table says of one plugin: every export it was called
//! through, how long each took, and every fault; one line for them all
//! when none faulted or was slow.

use std::time::Duration;

/// A mean event call over this makes a plugin slow in the report (the
/// printer's 1-2 ms per log line is not).
pub const SLOW_MEAN_EVENT: Duration = Duration::from_millis(10);
/// One event, save-state, load-state or finish call over this makes a
/// plugin slow in the report.
pub const SLOW_CALL: Duration = Duration::from_millis(100);
/// Starting a plugin (describe, configure) over this makes it slow.
pub const SLOW_START: Duration = Duration::from_secs(2);

/// An export of `trainbox:callback/plugin`, as the call path counts it.
/// Instantiating a fresh instance counts towards the call that follows it
/// (`describe` for the first, `configure` for every later one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    Describe,
    Configure,
    OnEvent,
    SaveState,
    LoadState,
    Finish,
}

impl Export {
    /// Every export, in the table's column order.
    pub const ALL: [Export; 6] = [
        Export::OnEvent,
        Export::Describe,
        Export::Configure,
        Export::LoadState,
        Export::SaveState,
        Export::Finish,
    ];

    /// The export's WIT name (`on-event`), used in fault lines.
    pub fn wit_name(self) -> &'static str {
        match self {
            Export::Describe => "describe",
            Export::Configure => "configure",
            Export::OnEvent => "on-event",
            Export::SaveState => "save-state",
            Export::LoadState => "load-state",
            Export::Finish => "finish",
        }
    }
}

/// Calls through one export and how long they took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    pub calls: u64,
    pub total: Duration,
    pub max: Duration,
}

impl CallStats {
    /// Counts one call that took `took`.
    pub fn add(&mut self, took: Duration) {
        self.calls += 1;
        self.total += took;
        self.max = self.max.max(took);
    }
}

/// The calls into one plugin and how they went, for the end-of-run report.
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    /// The name in messages (`recorder`, `recorder#2`).
    pub label: String,
    /// Calls per export, indexed as [`Export::ALL`].
    pub exports: [CallStats; 6],
    /// One line per fault: `<event or export>: <cause>`.
    pub faults: Vec<String>,
    pub restarts: u32,
    pub disabled: bool,
}

impl CallReport {
    /// The header of [`CallReport::row`]: the event calls first, then the
    /// time spent in every other export.
    pub const HEADER: &'static str = "plugin                calls   total ms     max ms   mean µs  faults  restarts  describe ms  configure ms  load ms  save ms  finish ms";

    /// The statistics of one export.
    pub fn export(&self, export: Export) -> &CallStats {
        &self.exports[Self::index(export)]
    }

    /// Counts one call through `export` that took `took`.
    pub fn add(&mut self, export: Export, took: Duration) {
        self.exports[Self::index(export)].add(took);
    }

    /// The export's place in [`Export::ALL`].
    fn index(export: Export) -> usize {
        match export {
            Export::OnEvent => 0,
            Export::Describe => 1,
            Export::Configure => 2,
            Export::LoadState => 3,
            Export::SaveState => 4,
            Export::Finish => 5,
        }
    }

    /// Whether the plugin cost the run noticeable time: a mean event call
    /// over [`SLOW_MEAN_EVENT`], one call to an event or to save-state,
    /// load-state or finish over [`SLOW_CALL`], or a start (describe,
    /// configure: instantiating included) over [`SLOW_START`].
    pub fn is_slow(&self) -> bool {
        let events = self.export(Export::OnEvent);
        let mean_over = events.calls > 0
            && events.total.as_secs_f64() / events.calls as f64 > SLOW_MEAN_EVENT.as_secs_f64();
        let call_over = [
            Export::OnEvent,
            Export::SaveState,
            Export::LoadState,
            Export::Finish,
        ]
        .iter()
        .any(|e| self.export(*e).max > SLOW_CALL);
        let start_over = [Export::Describe, Export::Configure]
            .iter()
            .any(|e| self.export(*e).total > SLOW_START);
        mean_over || call_over || start_over
    }

    /// Whether the plugin's row must be read: it faulted, restarted, was
    /// disabled or is slow.
    fn is_notable(&self) -> bool {
        !self.faults.is_empty() || self.restarts > 0 || self.disabled || self.is_slow()
    }

    /// The end-of-run report of `reports`. When a plugin faulted, restarted,
    /// was disabled or is slow ([`CallReport::is_slow`]): the full table,
    /// the header, a row per plugin, then a line per fault
    /// (`fault: <label>: <cause>`). Otherwise one line, [`CallReport::compact`].
    pub fn table(reports: &[CallReport]) -> Vec<String> {
        if !reports.iter().any(CallReport::is_notable) {
            return vec![Self::compact(reports)];
        }
        Self::full_table(reports)
    }

    /// One line for plugins that all went well: `plugins: progress 1234
    /// calls 3.1 ms, printer 40 calls 1.2 ms; none slow, no faults` (the
    /// event calls and their total time).
    pub fn compact(reports: &[CallReport]) -> String {
        let each: Vec<String> = reports
            .iter()
            .map(|r| {
                let events = r.export(Export::OnEvent);
                format!(
                    "{} {} calls {:.1} ms",
                    r.label,
                    events.calls,
                    events.total.as_secs_f64() * 1e3
                )
            })
            .collect();
        format!("plugins: {}; none slow, no faults", each.join(", "))
    }

    /// The full table: the header, a row per plugin, a line per fault.
    pub fn full_table(reports: &[CallReport]) -> Vec<String> {
        let rows = reports.iter().map(CallReport::row);
        let faults = reports.iter().flat_map(|r| {
            r.faults
                .iter()
                .map(move |fault| format!("fault: {}: {fault}", r.label))
        });
        std::iter::once(Self::HEADER.to_string())
            .chain(rows)
            .chain(faults)
            .collect()
    }

    /// One row of the report table.
    pub fn row(&self) -> String {
        let events = self.export(Export::OnEvent);
        let mean = if events.calls > 0 {
            events.total.as_secs_f64() * 1e6 / events.calls as f64
        } else {
            0.0
        };
        let ms = |e: Export| self.export(e).total.as_secs_f64() * 1e3;
        format!(
            "{:<16} {:>10} {:>10.1} {:>10.1} {:>9.1} {:>7} {:>9} {:>12.1} {:>13.1} {:>8.1} {:>8.1} {:>10.1}{}",
            self.label,
            events.calls,
            events.total.as_secs_f64() * 1e3,
            events.max.as_secs_f64() * 1e3,
            mean,
            self.faults.len(),
            self.restarts,
            ms(Export::Describe),
            ms(Export::Configure),
            ms(Export::LoadState),
            ms(Export::SaveState),
            ms(Export::Finish),
            if self.disabled { "  disabled" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_that_went_well_take_one_line_and_a_slow_or_faulted_one_the_table() {
        let mut fast = CallReport {
            label: "progress".into(),
            ..Default::default()
        };
        for _ in 0..1000 {
            fast.add(Export::OnEvent, Duration::from_micros(20));
        }
        fast.add(Export::Describe, Duration::from_millis(300));
        let mut printer = CallReport {
            label: "printer".into(),
            ..Default::default()
        };
        printer.add(Export::OnEvent, Duration::from_micros(1500));
        assert!(!printer.is_slow(), "1.5 ms a line is not slow");
        printer.add(Export::OnEvent, Duration::from_millis(25));
        assert_eq!(
            CallReport::table(&[fast.clone()]),
            ["plugins: progress 1000 calls 20.0 ms; none slow, no faults"]
        );
        let slow = CallReport::table(&[fast.clone(), printer.clone()]);
        assert!(printer.is_slow(), "a mean event call over 10 ms");
        assert_eq!(slow[0], CallReport::HEADER, "{slow:#?}");
        assert_eq!(slow.len(), 3);
        let mut stalled = fast.clone();
        stalled.add(Export::Finish, Duration::from_millis(150));
        assert!(stalled.is_slow(), "one call over 100 ms");
        let mut faulted = fast.clone();
        faulted.faults.push("on_step_end: trapped".into());
        let table = CallReport::table(&[faulted]);
        assert_eq!(
            table.last().map(String::as_str),
            Some("fault: progress: on_step_end: trapped")
        );
        let mut restarted = fast;
        restarted.restarts = 1;
        assert_eq!(CallReport::table(&[restarted]).len(), 2, "header and row");
    }

    #[test]
    fn every_export_has_its_own_column() {
        for (i, e) in Export::ALL.into_iter().enumerate() {
            assert_eq!(CallReport::index(e), i, "{}", e.wit_name());
        }
    }

    #[test]
    fn the_row_lines_up_with_the_header_and_shows_every_export() {
        let mut r = CallReport {
            label: "recorder".into(),
            ..Default::default()
        };
        r.add(Export::OnEvent, Duration::from_micros(10));
        r.add(Export::OnEvent, Duration::from_micros(30));
        r.add(Export::Finish, Duration::from_millis(2));
        let row = r.row();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[..4], ["recorder", "2", "0.0", "0.0"]);
        assert_eq!(cols[4], "20.0", "mean µs of the event calls");
        assert_eq!(cols.last(), Some(&"2.0"), "finish ms");
        assert_eq!(
            CallReport::HEADER
                .split("  ")
                .filter(|c| !c.trim().is_empty())
                .count(),
            cols.len(),
            "{row}"
        );
        assert_eq!(row.len(), CallReport::HEADER.chars().count(), "{row}");
    }
}
