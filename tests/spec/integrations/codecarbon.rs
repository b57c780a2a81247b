//! codecarbon: the plugin's `emissions.csv` is checked against codecarbon
//! 3.3.2 itself, used as an oracle on the same inputs: `FileOutput` accepts
//! the header and appends to the file; the TDP match, load curve and RAM
//! model give the same powers; `IntelRAPL`, pointed at the same fake
//! powercap tree, gives the same CPU energy, wrap-around included; and
//! `Emissions` gives the same kg CO2eq for several countries and regions.

use crate::util::{plugin, readers_python, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// codecarbon as the oracle. For each row of the CSV at argv[1] it prints
/// the row and what codecarbon computes from the row's inputs (duration,
/// CPU model, RAM size, country, region): powers, energies and emissions.
/// The CPU is argv[2]: `tdp:<load %>:<sockets>`, or
/// `rapl:<tree>:<uJ at start>:<uJ at stop>` for `IntelRAPL` on a fake tree
/// whose package 0 reads `intel-rapl:0/copy.txt`.
const ORACLE: &str = r#"
import csv, json, logging, os, sys
logging.disable(logging.CRITICAL)
from codecarbon.core.cpu import TDP, IntelRAPL
from codecarbon.core.emissions import Emissions
from codecarbon.core.units import Energy, Power, Time
from codecarbon.external.geography import GeoMetadata
from codecarbon.external.ram import RAM
from codecarbon.input import DataSource

path, cpu_mode = sys.argv[1], sys.argv[2].split(":")
data = DataSource()
mix = data.get_global_energy_mix_data()
out = []
for row in csv.DictReader(open(path, newline="")):
    t = Time.from_seconds(float(row["duration"]))
    if cpu_mode[0] == "tdp":
        load, sockets = float(cpu_mode[1]), int(cpu_mode[2])
        table = data.get_cpu_power_data()
        tdp = TDP.__new__(TDP)
        match = tdp._get_matching_cpu(row["cpu_model"], table)
        base = tdp._get_cpu_constant_power(match, table) if match else 4 * int(row["cpu_count"])
        cpu = Power.from_watts(base * sockets * (0.1 + 0.9 * ((load / 100.0) ** 3)))
        cpu_energy = Energy.from_power_and_time(power=cpu, time=t)
        cpu_power = cpu.W
    else:
        tree, start, stop = cpu_mode[1], cpu_mode[2], cpu_mode[3]
        copy = os.path.join(tree, "intel-rapl", "intel-rapl:0", "copy.txt")
        open(copy, "w").write(start)
        rapl = IntelRAPL(rapl_dir=os.path.join(tree, "intel-rapl"))
        rapl.start()
        open(copy, "w").write(stop)
        details = rapl.get_cpu_details(t)
        cpu_energy = Energy.from_energy(sum(v for k, v in details.items() if k.startswith("Processor Energy Delta_")))
        cpu_power = Power.from_watts(sum(v for k, v in details.items() if k.startswith("Processor Power"))).W
        match = None
    ram_model = RAM.__new__(RAM)
    ram_model.is_arm_cpu = any(a in row["os"].lower() for a in ("arm", "aarch"))
    ram = Power.from_watts(ram_model._calculate_ram_power(float(row["ram_total_size"])))
    ram_energy = Energy.from_power_and_time(power=ram, time=t)
    total = Energy.from_energy(0) + ram_energy + cpu_energy
    iso, region = row["country_iso_code"], row["region"] or None
    geo = GeoMetadata(country_iso_code=iso, country_name=row["country_name"] or None, region=region)
    kg = Emissions(data).get_private_infra_emissions(total, geo)
    out.append({"row": row, "want": {
        "cpu_power": cpu_power, "cpu_energy": cpu_energy.kWh,
        "ram_power": ram.W, "ram_energy": ram_energy.kWh,
        "energy_consumed": total.kWh, "emissions": kg, "emissions_rate": kg / t.seconds,
        "country_name": mix.get(iso, {}).get("country_name", ""), "matched": match,
    }})
print(json.dumps(out))
"#;

/// codecarbon's `FileOutput` on the plugin's file: whether it accepts the
/// header, and what its own `out()` of the last row does to the file.
const FILE_OUTPUT: &str = r#"
import csv, json, logging, os, sys
logging.disable(logging.CRITICAL)
from codecarbon.output_methods.emissions_data import EmissionsData
from codecarbon.output_methods.file import FileOutput
path = sys.argv[1]
folder, name = os.path.split(path)
rows = list(csv.DictReader(open(path, newline="")))
last = EmissionsData(**rows[-1])
fo = FileOutput(name, folder)
valid = fo.has_valid_headers(last)
fo.out(last, last)
after = list(csv.reader(open(path, newline="")))
print(json.dumps({"valid_headers": valid, "lines_after_out": len(after), "backup": os.path.exists(path + ".bak")}))
"#;

fn python(script: &str, args: &[&str]) -> Value {
    let out = Command::new(readers_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("running the readers python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "codecarbon oracle failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Every numeric expectation of the oracle matches the row (to 1e-12,
/// relative: serde_json may round a parsed float by one ulp).
fn assert_rows_agree(oracle: &Value) {
    for (i, case) in oracle.as_array().unwrap().iter().enumerate() {
        let (row, want) = (&case["row"], &case["want"]);
        for (k, w) in want.as_object().unwrap() {
            let Some(w) = w.as_f64() else { continue };
            let got: f64 = row[k].as_str().unwrap().parse().unwrap();
            assert!(
                (got - w).abs() <= 1e-12 * w.abs().max(f64::MIN_POSITIVE),
                "row {i} {k}: plugin {got:e}, codecarbon {w:e}\n{row:#}"
            );
        }
        assert_eq!(row["country_name"], want["country_name"], "row {i}");
    }
}

fn csv_path(out: &Path) -> PathBuf {
    out.join("plugins/codecarbon/emissions.csv")
}

/// A run reporting to codecarbon with no powercap tree (the TDP estimate)
/// and one CPU socket, whatever the machine has.
fn codecarbon_run(test: &str) -> Run {
    let run = Run::regression(test).args(&[
        "--report_to",
        "codecarbon",
        "--plugin_config",
        "codecarbon.cpu_sockets=1",
    ]);
    let none = run.dir.join("no-powercap");
    run.env("TRAINBOX_POWERCAP_DIR", none.to_str().unwrap())
}

#[test]
fn csv_has_codecarbons_columns_and_tdp_estimate() {
    let model = "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz";
    let done = codecarbon_run("codecarbon_tdp")
        .args(&["--plugin_config", &format!("codecarbon.cpu_model={model}")])
        .args(&["--plugin_config", "codecarbon.cpu_load=50"])
        .args(&["--plugin_config", "codecarbon.cpu_sockets=2"]) // the last value wins
        .env("CODECARBON_COUNTRY_ISO_CODE", "FRA")
        .ok();
    let path = csv_path(&done.out);
    let text = std::fs::read_to_string(&path).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(
        header,
        "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,gpu_power,ram_power,\
         cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,country_name,country_iso_code,region,cloud_provider,\
         cloud_region,os,python_version,codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,\
         ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,ram_utilization_percent,ram_used_gb,\
         on_cloud,pue,wue"
    );
    assert_eq!(text.lines().count(), 2, "one row per stop");
    assert!(
        !done.out.join("emissions.csv").exists(),
        "the plugin writes its own folder only"
    );

    let oracle = python(ORACLE, &[path.to_str().unwrap(), "tdp:50:2"]);
    let case = &oracle[0];
    assert_eq!(
        case["want"]["matched"], "Intel Xeon Gold 6148",
        "codecarbon's TDP match"
    );
    let cpu_w: f64 = case["row"]["cpu_power"].as_str().unwrap().parse().unwrap();
    assert!(
        (cpu_w - 63.75).abs() < 1e-9,
        "150 W × 2 sockets × (0.1 + 0.9 × 0.5³): {cpu_w}"
    );
    assert_rows_agree(&oracle);
    let row = &case["row"];
    assert_eq!(
        (
            row["country_name"].as_str(),
            row["country_iso_code"].as_str(),
            row["region"].as_str()
        ),
        (Some("France"), Some("FRA"), Some(""))
    );
    assert_eq!(
        (row["project_name"].as_str(), row["tracking_mode"].as_str()),
        (Some("codecarbon"), Some("machine"))
    );
    assert_eq!(row["experiment_id"], "5b0fa12a-3dd7-45bb-9766-cc326314d9f1");

    let file = python(FILE_OUTPUT, &[path.to_str().unwrap()]);
    assert_eq!(file["valid_headers"], true, "FileOutput.has_valid_headers");
    assert_eq!(
        (file["lines_after_out"].as_u64(), file["backup"].as_bool()),
        (Some(3), Some(false)),
        "codecarbon appends to the plugin's file rather than backing it up"
    );
}

#[test]
fn rapl_energy_agrees_with_codecarbons_intel_rapl() {
    const MAX: u64 = 262_143_328_850;
    let (start, stop) = (MAX - 5_000_000, 25_000_000u64);
    let run = Run::regression("codecarbon_rapl")
        .args(&["--report_to", "codecarbon"])
        .plugin("granted");
    // A tree shaped like /sys/devices/virtual/powercap. Package 0's counter
    // is a link to copy.txt, which the `granted` test plugin overwrites with
    // /data/input.txt at train begin, after codecarbon (an integration, so
    // first) has read its baseline: the counter wraps from `start` to `stop`.
    let tree = run.dir.join("powercap");
    let domain = |rel: &str, name: &str, uj: u64| {
        let d = tree.join("intel-rapl").join(rel);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(d.join("max_energy_range_uj"), format!("{MAX}\n")).unwrap();
        std::fs::write(d.join("energy_uj"), format!("{uj}\n")).unwrap();
        d
    };
    let package0 = domain("intel-rapl:0", "package-0", 0);
    domain("intel-rapl:0/intel-rapl:0:0", "core", 1_000);
    domain("intel-rapl:1", "package-1", 7_000_000_000);
    std::fs::remove_file(package0.join("energy_uj")).unwrap();
    std::os::unix::fs::symlink("copy.txt", package0.join("energy_uj")).unwrap();
    std::fs::write(package0.join("copy.txt"), format!("{start}\n")).unwrap();
    std::fs::create_dir_all(run.dir.join("data")).unwrap();
    std::fs::write(run.dir.join("data/input.txt"), format!("{stop}\n")).unwrap();
    std::fs::write(
        run.dir.join("run.toml"),
        format!(
            "[plugins.granted]\npath = {:?}\nread_dirs = {{ \"/data\" = \"data\" }}\n\
             write_dirs = {{ \"/out\" = \"powercap/intel-rapl/intel-rapl:0\" }}\nenv = [\"TRAINBOX_TEST_SECRET\"]\n",
            plugin("granted").to_str().unwrap()
        ),
    )
    .unwrap();
    let done = run
        .args(&["--config", "run.toml"])
        .env("TRAINBOX_POWERCAP_DIR", tree.to_str().unwrap())
        .env("CODECARBON_COUNTRY_ISO_CODE", "")
        .ok();
    assert!(
        done.stdout
            .contains("[codecarbon] CPU energy from RAPL (2 counters)"),
        "{}",
        done.stdout
    );
    assert_eq!(
        std::fs::read_to_string(package0.join("copy.txt")).unwrap(),
        format!("{stop}\n"),
        "the counter advanced during training"
    );

    let path = csv_path(&done.out);
    let oracle = python(
        ORACLE,
        &[
            path.to_str().unwrap(),
            &format!("rapl:{}:{start}:{stop}", tree.display()),
        ],
    );
    assert_rows_agree(&oracle);
    let row = &oracle[0]["row"];
    // 30 J (5 J to the wrap, 25 J after), in kWh as codecarbon converts it.
    let kwh: f64 = row["cpu_energy"].as_str().unwrap().parse().unwrap();
    assert!((kwh - 30.0 * 2.77778e-7).abs() < 1e-15, "{kwh}");
    // No country given: codecarbon's offline default, Quebec.
    assert_eq!(
        [
            &row["country_name"],
            &row["region"],
            &row["longitude"],
            &row["latitude"]
        ],
        ["Canada", "quebec", "-71.2", "46.8"]
    );
}

#[test]
fn carbon_intensity_agrees_with_codecarbon_by_location() {
    // One output folder: each run appends its row to the same emissions.csv
    // (and saves no checkpoint, which the next run would have to resume).
    let run = codecarbon_run("codecarbon_locations").args(&["--save_strategy", "no"]);
    let locations = [
        ("FRA", ""),
        ("DEU", ""),
        ("USA", "california"),
        ("USA", "atlantis"),
        ("CAN", "ontario"),
        ("CHN", "Beijing"),
        ("SWE", "SE3"),
        ("XYZ", ""),
        ("", ""),
    ];
    for (iso, region) in locations {
        run.clone()
            .env("CODECARBON_COUNTRY_ISO_CODE", iso)
            .env("CODECARBON_REGION", region)
            .ok();
    }
    let path = csv_path(&run.out());
    let oracle = python(ORACLE, &[path.to_str().unwrap(), "tdp:100:1"]);
    assert_eq!(
        oracle.as_array().unwrap().len(),
        locations.len(),
        "one row per run, appended"
    );
    assert_rows_agree(&oracle);
    let regions: Vec<&str> = oracle
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["row"]["region"].as_str().unwrap())
        .collect();
    assert_eq!(
        regions,
        [
            "",
            "",
            "california",
            "atlantis",
            "ontario",
            "beijing",
            "se3",
            "",
            "quebec"
        ]
    );
}

#[test]
fn aborted_run_still_writes_its_row() {
    let run = codecarbon_run("codecarbon_aborted").plugin("hostile");
    std::fs::write(
        run.dir.join("run.toml"),
        "[plugins.hostile]\non_error = \"abort\"\n",
    )
    .unwrap();
    let run = run.args(&[
        "--config",
        "run.toml",
        "--plugin_config",
        "hostile.mode=panic",
    ]);
    run.fails();
    let path = csv_path(&run.out());
    let oracle = python(ORACLE, &[path.to_str().unwrap(), "tdp:100:1"]);
    assert_eq!(oracle.as_array().unwrap().len(), 1);
    assert_rows_agree(&oracle);
}

#[test]
fn loaded_without_grants_it_fails_naming_the_grant() {
    let err = Run::regression("codecarbon_no_grants")
        .arg("--plugin")
        .arg(plugin("codecarbon").to_str().unwrap())
        .fails();
    assert!(
        err.contains("codecarbon.wasm: plugin codecarbon asks for `env CODECARBON_COUNTRY_ISO_CODE`, which is not granted")
            && err.contains("add plugins.codecarbon.env = [\"CODECARBON_COUNTRY_ISO_CODE\"] to the run config"),
        "{err}"
    );
}
