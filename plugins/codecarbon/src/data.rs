//! codecarbon 3.3.2's data tables (MIT), embedded at build time from the
//! wheel's `codecarbon/data` folder that `build.rs` finds; nothing here is
//! committed. Parsed by `intensity` and `hardware`, once, at configure.

macro_rules! table {
    ($file:literal) => {
        include_str!(concat!(env!("CODECARBON_DATA"), "/", $file))
    };
}

/// Per country (ISO 3166 alpha-3): `country_name`, `carbon_intensity`
/// (g/kWh) and the production mix in TWh.
pub const GLOBAL_ENERGY_MIX: &str = table!("private_infra/global_energy_mix.json");
/// g/kWh per energy source, and `world_average`.
pub const CARBON_INTENSITY_PER_SOURCE: &str =
    table!("private_infra/carbon_intensity_per_source.json");
/// Sweden, Norway and Finland bidding zones: `emission_factor` in g/kWh.
pub const NORDIC_EMISSIONS: &str = table!("private_infra/nordic_emissions.json");
/// US states: `emissions` in lbs/MWh.
pub const USA_EMISSIONS: &str = table!("private_infra/2023/usa_emissions.json");
/// Canadian provinces: production mix in percent.
pub const CANADA_ENERGY_MIX: &str = table!("private_infra/2023/canada_energy_mix.json");
/// Chinese provinces: `emission_factor` in g/kWh and the region's `names`.
pub const CHINA_PROVINCIAL_EMISSIONS: &str =
    table!("private_infra/2023/china_provincial_emissions.json");
/// CPU models and their TDP in W (`Name,TDP`).
pub const CPU_POWER: &str = table!("hardware/cpu_power.csv");
