//! `emissions.csv` as codecarbon 3.3.2's `FileOutput` writes it with pandas:
//! the 38 columns of `EmissionsData` in order, floats as Python's `repr`,
//! minimal quoting, `\n` line ends. An existing file whose header has the
//! same set of columns gets the row appended in its own column order; one
//! that does not is renamed to `emissions.csv.bak` (then
//! `emissions.csv_0.bak`, …) and a new file is started, as codecarbon does.
//! Reading the header and quoting the cells is the `csv` crate's job
//! (`QuoteStyle::Necessary` is Python's `csv.QUOTE_MINIMAL`).

use csv::{QuoteStyle, ReaderBuilder, Terminator, WriterBuilder};
use std::io::Write;
use trainbox_sdk::python::float_repr;

/// `EmissionsData`'s fields, in order.
pub const COLUMNS: [&str; 38] = [
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
];

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Float(f64),
    Int(i64),
    /// Python's `None`: an empty cell.
    Empty,
}

/// A cell's text as pandas writes it, before quoting.
fn render(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        Cell::Float(f) => float_repr(*f),
        Cell::Int(i) => i.to_string(),
        Cell::Empty => String::new(),
    }
}

/// One CSV line of `fields`, quoted only where needed, ending in `\n`.
fn line<I, T>(fields: I) -> Result<Vec<u8>, String>
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut w = WriterBuilder::new()
        .quote_style(QuoteStyle::Necessary)
        .terminator(Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(fields).map_err(|e| e.to_string())?;
    w.into_inner().map_err(|e| e.to_string())
}

/// The fields of a CSV text's first record (its header).
fn header_of(text: &str) -> Vec<String> {
    ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .next()
        .and_then(Result::ok)
        .map(|r| r.iter().map(String::from).collect())
        .unwrap_or_default()
}

/// What `append` did.
#[derive(Debug, PartialEq)]
pub enum Written {
    Created,
    Appended,
    /// The old file had other columns and was renamed to this name.
    BackedUp(String),
}

/// Writes `row` (one cell per column of [`COLUMNS`]) to the CSV at `path`.
pub fn append(path: &str, row: &[Cell; 38]) -> Result<Written, String> {
    let existing = std::fs::read_to_string(path).ok().filter(|t| !t.is_empty());
    let mut outcome = Written::Created;
    let mut order: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    if let Some(text) = existing {
        let mut header = header_of(&text);
        let mut sorted = header.clone();
        sorted.sort();
        let mut ours = order.clone();
        ours.sort();
        if sorted == ours {
            order = std::mem::take(&mut header);
            outcome = Written::Appended;
        } else {
            let backup = backup_name(path);
            std::fs::rename(path, &backup)
                .map_err(|e| format!("renaming {path} to {backup}: {e}"))?;
            outcome = Written::BackedUp(backup);
        }
    }
    let cells = order.iter().map(|name| {
        let i = COLUMNS
            .iter()
            .position(|c| c == name)
            .expect("a known column");
        render(&row[i])
    });
    let mut text = Vec::new();
    if outcome != Written::Appended {
        text.extend(line(COLUMNS)?);
    }
    text.extend(line(cells)?);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(outcome == Written::Appended)
        .write(true)
        .truncate(outcome != Written::Appended)
        .open(path)
        .map_err(|e| format!("opening {path}: {e}"))?;
    file.write_all(&text)
        .map_err(|e| format!("writing {path}: {e}"))?;
    Ok(outcome)
}

/// codecarbon's `backup`: `<name>.bak`, else `<name>_0.bak`, `<name>_1.bak`, …
fn backup_name(path: &str) -> String {
    let mut name = format!("{path}.bak");
    let mut i = 0;
    while std::path::Path::new(&name).exists() {
        name = format!("{path}_{i}.bak");
        i += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_python_reprs() {
        let cases = [
            (1.0251411760000337, "1.0251411760000337"),
            (3.065406885205775e-08, "3.065406885205775e-08"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (20.0, "20.0"),
            (-71.2, "-71.2"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (1e15, "1000000000000000.0"),
            (f64::NAN, "nan"),
        ];
        for (v, want) in cases {
            assert_eq!(float_repr(v), want, "{v:e}");
        }
    }

    #[test]
    fn text_is_quoted_only_when_needed() {
        let cells = [
            Cell::Text("AMD EPYC".into()),
            Cell::Text("a, \"b\"".into()),
            Cell::Empty,
            Cell::Int(2),
            Cell::Text("two\nlines".into()),
            Cell::Float(0.5),
        ];
        assert_eq!(
            String::from_utf8(line(cells.iter().map(render)).unwrap()).unwrap(),
            "AMD EPYC,\"a, \"\"b\"\"\",,2,\"two\nlines\",0.5\n"
        );
    }

    #[test]
    fn headers_are_read_as_csv() {
        assert_eq!(header_of("a,\"b,c\",d\n1,2,3\n"), ["a", "b,c", "d"]);
        assert_eq!(header_of("\"x\"\r\n"), ["x"]);
        assert!(header_of("").is_empty());
    }

    fn row(tag: &str) -> [Cell; 38] {
        std::array::from_fn(|i| {
            if i == 0 {
                Cell::Text(tag.into())
            } else {
                Cell::Int(i as i64)
            }
        })
    }

    #[test]
    fn rows_append_in_the_files_order_or_back_it_up() {
        let dir = std::env::temp_dir().join(format!("trainbox-csv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("emissions.csv").to_string_lossy().into_owned();
        assert_eq!(append(&path, &row("a")).unwrap(), Written::Created);
        assert_eq!(append(&path, &row("b")).unwrap(), Written::Appended);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], COLUMNS.join(","));
        assert!(lines[2].starts_with("b,1,2,"));

        // The same columns in another order: values follow the file's header.
        let mut swapped = COLUMNS.to_vec();
        swapped.swap(0, 1);
        std::fs::write(&path, swapped.join(",") + "\n").unwrap();
        append(&path, &row("c")).unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("1,c,2,"));

        // Other columns: backed up, twice.
        std::fs::write(&path, "timestamp,other\n").unwrap();
        let bak = format!("{path}.bak");
        assert_eq!(
            append(&path, &row("d")).unwrap(),
            Written::BackedUp(bak.clone())
        );
        std::fs::write(&path, "x\n").unwrap();
        assert_eq!(
            append(&path, &row("e")).unwrap(),
            Written::BackedUp(format!("{path}_0.bak"))
        );
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), "timestamp,other\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
