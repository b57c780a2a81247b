//! Where the run is and how much CO2 its electricity emits, as codecarbon
//! 3.3.2's `Emissions.get_private_infra_emissions` computes it offline (no
//! Electricity Maps token, no cloud): regional data for US states
//! (lbs/MWh), Canadian provinces (coal, petroleum and gas shares), Chinese
//! provinces and Nordic bidding zones (g/kWh); else the country's
//! `carbon_intensity` from `global_energy_mix.json` (or its production mix);
//! else the world average. The arithmetic follows codecarbon's, operation
//! for operation, so that the results agree to the last bit or two.

use crate::data;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// Where the electricity comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// ISO 3166 alpha-3, upper case.
    pub country_iso_code: String,
    /// From `global_energy_mix.json`; none for a code it lacks.
    pub country_name: Option<String>,
    /// Lower case, as codecarbon's offline tracker keeps it.
    pub region: Option<String>,
    pub longitude: Option<f64>,
    pub latitude: Option<f64>,
}

impl Location {
    /// Where codecarbon's `EmissionsTracker` (HF's) puts a machine whose
    /// geo-IP lookup fails, as it always does offline: Quebec, Canada.
    pub fn codecarbon_default() -> Location {
        Location {
            country_iso_code: "CAN".into(),
            country_name: Some("Canada".into()),
            region: Some("quebec".into()),
            longitude: Some(-71.2),
            latitude: Some(46.8),
        }
    }

    /// `OfflineEmissionsTracker(country_iso_code=…, region=…)`.
    pub fn offline(iso: &str, region: Option<&str>) -> Location {
        let iso = iso.trim().to_uppercase();
        let country_name = global_mix()
            .get(&iso)
            .and_then(|c| c.get("country_name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Location {
            country_iso_code: iso,
            country_name,
            region: region
                .map(|r| r.trim().to_lowercase())
                .filter(|r| !r.is_empty()),
            longitude: None,
            latitude: None,
        }
    }

    /// `Canada/quebec`, or the country code alone.
    pub fn label(&self) -> String {
        let country = self
            .country_name
            .as_deref()
            .unwrap_or(&self.country_iso_code);
        match &self.region {
            Some(r) => format!("{country}/{r}"),
            None => country.to_string(),
        }
    }
}

/// A JSON object with its keys in file order (codecarbon sums a production
/// mix in that order, and float sums depend on it; `serde_json::Map` sorts).
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(Entries(std::marker::PhantomData))
    }
}

impl<V> Ordered<V> {
    fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// `global_energy_mix.json`: countries, and their fields, in file order.
fn global_mix() -> Ordered<Ordered<Value>> {
    serde_json::from_str(data::GLOBAL_ENERGY_MIX).expect("codecarbon's global_energy_mix.json")
}

fn table(text: &str) -> Value {
    serde_json::from_str(text).expect("codecarbon data table is JSON")
}

/// `carbon_intensity_per_source.json`'s entry in g/kWh.
fn per_source(key: &str) -> Option<f64> {
    table(data::CARBON_INTENSITY_PER_SOURCE)[key].as_f64()
}

/// `EmissionsPerKWh.from_g_per_kWh(world_average).kgs_per_kWh`.
fn world_average_kg() -> f64 {
    per_source("world_average").expect("world_average") * 0.001
}

/// How codecarbon turns kWh into kg for one location.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// `kgs_per_kWh * kWh` (`EmissionsPerKWh` paths).
    KgPerKwh(f64),
    /// `g / 1000 * kWh` (Nordic zones and Chinese provinces).
    GramsPerKwh(f64),
}

impl Rate {
    /// kg CO2eq for `kwh`.
    pub fn emissions(self, kwh: f64) -> f64 {
        match self {
            Rate::KgPerKwh(kg) => kg * kwh,
            Rate::GramsPerKwh(g) => g / 1000.0 * kwh,
        }
    }
}

const NORDIC: &[(&str, &[&str])] = &[
    ("SWE", &["SE1", "SE2", "SE3", "SE4"]),
    ("NOR", &["NO1", "NO2", "NO3", "NO4", "NO5"]),
    ("FIN", &["FI"]),
];

fn nordic_zone(loc: &Location) -> Option<String> {
    let zone = loc.region.as_ref()?.to_uppercase();
    NORDIC
        .iter()
        .any(|(c, zones)| *c == loc.country_iso_code && zones.contains(&zone.as_str()))
        .then_some(zone)
}

/// The emission rate of a location (`get_private_infra_emissions`).
pub fn rate(loc: &Location) -> Rate {
    let regional = loc.region.is_some()
        && (["USA", "CAN", "CHN"].contains(&loc.country_iso_code.as_str())
            || nordic_zone(loc).is_some());
    if regional {
        if let Some(rate) = region_rate(loc) {
            return rate;
        }
    }
    country_rate(&loc.country_iso_code)
}

/// `get_region_emissions`; none where codecarbon falls back on the country.
fn region_rate(loc: &Location) -> Option<Rate> {
    let region = loc.region.as_deref()?;
    if let Some(zone) = nordic_zone(loc) {
        let g = table(data::NORDIC_EMISSIONS)["data"][&zone]["emission_factor"].as_f64()?;
        return Some(Rate::GramsPerKwh(g));
    }
    match loc.country_iso_code.as_str() {
        "CHN" => china_province(region).map(Rate::GramsPerKwh),
        "USA" => {
            let lbs = table(data::USA_EMISSIONS)[region]["emissions"].as_f64()?;
            Some(Rate::KgPerKwh(lbs * 0.00045359237))
        }
        "CAN" => canada_rate(&table(data::CANADA_ENERGY_MIX)[region]).map(Rate::KgPerKwh),
        _ => None,
    }
}

/// `_region_energy_mix_to_emissions_rate`: the coal, petroleum and natural
/// gas shares times their kg/kWh.
fn canada_rate(mix: &Value) -> Option<f64> {
    let total = mix.get("total")?.as_f64()?;
    let share = |k: &str| mix.get(k).and_then(Value::as_f64).map(|v| v / total);
    let mut kg = 0.0;
    for (source, factor) in [
        ("coal", 0.995725971),
        ("petroleum", 0.8166885263),
        ("naturalGas", 0.7438415916),
    ] {
        kg += share(source)? * factor;
    }
    Some(kg)
}

/// A Chinese province's g/kWh, by any of its names (codecarbon drops a
/// trailing "province", "municipality", … first).
fn china_province(region: &str) -> Option<f64> {
    let mut name = region.split_whitespace().collect::<Vec<_>>().join(" ");
    for suffix in [
        "autonomous region",
        "municipality",
        "province",
        "sheng",
        "shi",
        "zizhiqu",
    ] {
        if let Some(stem) = name.strip_suffix(suffix) {
            if stem.ends_with(char::is_whitespace) {
                name = stem.trim_end().to_string();
                break;
            }
        }
    }
    let data = table(data::CHINA_PROVINCIAL_EMISSIONS);
    let provinces = data["data"].as_object()?;
    provinces.values().find_map(|p| {
        let names = p["names"].as_array()?;
        names
            .iter()
            .any(|n| n.as_str() == Some(&name))
            .then(|| p["emission_factor"].as_f64())?
    })
}

/// `get_country_emissions`: the country's `carbon_intensity`, else its
/// production mix, else the world average.
fn country_rate(iso: &str) -> Rate {
    let mix = global_mix();
    let Some(country) = mix.get(iso) else {
        return Rate::KgPerKwh(world_average_kg());
    };
    if let Some(g) = country.get("carbon_intensity").and_then(Value::as_f64) {
        return Rate::KgPerKwh(g * 0.001);
    }
    Rate::KgPerKwh(mix_rate(country).unwrap_or_else(world_average_kg))
}

/// `_global_energy_mix_to_emissions_rate` without `carbon_intensity`: each
/// `<source>_TWh` with a known intensity, weighted by its share; none (world
/// average) when those sources do not add up to `total_TWh` exactly.
fn mix_rate(country: &Ordered<Value>) -> Option<f64> {
    let total = country.get("total_TWh")?.as_f64()?;
    let (mut g, mut covered) = (0.0, 0.0);
    for (key, v) in &country.0 {
        let Some(source) = key.strip_suffix("_TWh") else {
            continue;
        };
        let (Some(twh), Some(intensity)) = (v.as_f64(), per_source(source)) else {
            continue;
        };
        g += twh / total * intensity;
        covered += twh;
    }
    (covered == total).then_some(g * 0.001)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kg(iso: &str, region: Option<&str>) -> f64 {
        rate(&Location::offline(iso, region)).emissions(1.0)
    }

    #[test]
    fn countries_use_their_carbon_intensity() {
        // Values from codecarbon 3.3.2's Emissions class (spec §7).
        assert!((kg("FRA", None) - 0.056039).abs() < 1e-12);
        assert!((kg("DEU", None) - 0.38095).abs() < 1e-12);
        assert!(
            (kg("fra", None) - 0.056039).abs() < 1e-12,
            "codes are upper-cased"
        );
        assert!(
            (kg("XYZ", None) - 0.475).abs() < 1e-15,
            "unknown: the world average"
        );
        assert_eq!(
            Location::offline("FRA", None).country_name.as_deref(),
            Some("France")
        );
    }

    #[test]
    fn regions_use_regional_tables() {
        assert!((kg("CAN", Some("Quebec")) - 0.0039374).abs() < 1e-7);
        assert!((kg("USA", Some("california")) - 0.179064).abs() < 1e-6);
        // An unknown region falls back on the country.
        assert_eq!(kg("USA", Some("atlantis")), kg("USA", None));
        assert_eq!(kg("CHN", Some("Beijing Municipality")), 555.4 / 1000.0);
        assert_eq!(kg("SWE", Some("se3")), 27.0 / 1000.0);
        // A region outside the regional countries is ignored.
        assert_eq!(kg("FRA", Some("bretagne")), kg("FRA", None));
    }

    #[test]
    fn the_default_is_quebec() {
        let q = Location::codecarbon_default();
        assert_eq!(q.label(), "Canada/quebec");
        assert_eq!(rate(&q), rate(&Location::offline("CAN", Some("quebec"))));
    }

    #[test]
    fn a_mix_without_intensity_is_weighted_in_file_order() {
        let c: Ordered<Value> = serde_json::from_str(
            r#"{"coal_TWh": 1.0, "nuclear_TWh": 3.0, "total_TWh": 4.0, "fossil_TWh": 0.0}"#,
        )
        .unwrap();
        // total_TWh is a key too, but has no per-source intensity.
        let want = (1.0 / 4.0 * 995.0 + 3.0 / 4.0 * 29.0) * 0.001;
        assert_eq!(mix_rate(&c), Some(want));
        let short: Ordered<Value> =
            serde_json::from_str(r#"{"coal_TWh": 1.0, "total_TWh": 2.0}"#).unwrap();
        assert_eq!(mix_rate(&short), None, "sources must cover the total");
    }
}
