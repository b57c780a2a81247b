//! What a launcher (`torchrun`, or anything that sets torch's variables)
//! tells each process about the run it belongs to.

use anyhow::{anyhow, bail, Result};

/// One process's place in a multi-process run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// `RANK`: this process among all (0 is "world zero").
    pub rank: usize,
    /// `WORLD_SIZE`: processes in the run.
    pub world_size: usize,
    /// `LOCAL_RANK`: this process among those of its machine (its GPU).
    pub local_rank: usize,
    /// `LOCAL_WORLD_SIZE`: processes on this machine.
    pub local_world_size: usize,
    /// `MASTER_ADDR` and `MASTER_PORT`: the rendezvous store.
    pub master_addr: String,
    pub master_port: u16,
    /// `TORCHELASTIC_USE_AGENT_STORE=True`: torchrun's agent serves the
    /// store, so every rank is a client (otherwise rank 0 serves it).
    pub agent_store: bool,
    /// `TORCHELASTIC_RESTART_COUNT`: how many times torchrun restarted the group.
    pub restart_count: u32,
    /// `TORCHELASTIC_MAX_RESTARTS`.
    pub max_restarts: u32,
}

impl Launch {
    /// The launch described by the variables `get` returns; `None` when
    /// no launcher set `WORLD_SIZE` (or set it to 1 without `RANK`), i.e.
    /// a plain single-process run. Half a description is an error naming
    /// the missing variable.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>> {
        let world_size = match get("WORLD_SIZE") {
            None => {
                if get("RANK").is_some() {
                    bail!("RANK is set but WORLD_SIZE is not; {HOW}");
                }
                return Ok(None);
            }
            Some(v) => number("WORLD_SIZE", &v)?,
        };
        if world_size == 0 {
            bail!("WORLD_SIZE is 0; {HOW}");
        }
        let rank = match get("RANK") {
            Some(v) => number("RANK", &v)?,
            None if world_size == 1 => 0,
            None => bail!("WORLD_SIZE is {world_size} but RANK is not set; {HOW}"),
        };
        if rank >= world_size {
            bail!("RANK {rank} is not below WORLD_SIZE {world_size}; {HOW}");
        }
        let local_rank = match get("LOCAL_RANK") {
            Some(v) => number("LOCAL_RANK", &v)?,
            None => rank,
        };
        let local_world_size = match get("LOCAL_WORLD_SIZE") {
            Some(v) => number("LOCAL_WORLD_SIZE", &v)?,
            None => world_size,
        };
        let master_addr = get("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into());
        let master_port = match get("MASTER_PORT") {
            Some(v) => {
                let port = number("MASTER_PORT", &v)?;
                u16::try_from(port).map_err(|_| anyhow!("MASTER_PORT {port} is not a port"))?
            }
            None if world_size == 1 => 29500,
            None => bail!("WORLD_SIZE is {world_size} but MASTER_PORT is not set; {HOW}"),
        };
        let count = |name: &str| -> Result<u32> {
            get(name).map_or(Ok(0), |v| Ok(number(name, &v)? as u32))
        };
        Ok(Some(Launch {
            rank,
            world_size,
            local_rank,
            local_world_size,
            master_addr,
            master_port,
            agent_store: get("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True"),
            restart_count: count("TORCHELASTIC_RESTART_COUNT")?,
            max_restarts: count("TORCHELASTIC_MAX_RESTARTS")?,
        }))
    }
}

const HOW: &str =
    "start several processes with `torchrun --no-python --nproc_per_node N trainbox train ...`, \
                   or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT for every process";

fn number(name: &str, value: &str) -> Result<usize> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow!("{name}={value:?} is not a whole number; {HOW}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Option<Launch>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Launch::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn torchruns_variables_describe_the_process() {
        let l = launch(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("LOCAL_WORLD_SIZE", "2"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "1"),
            ("TORCHELASTIC_MAX_RESTARTS", "2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (l.rank, l.world_size, l.local_rank, l.local_world_size),
            (3, 4, 1, 2)
        );
        assert_eq!((l.master_addr.as_str(), l.master_port), ("10.0.0.1", 29400));
        assert!(l.agent_store);
        assert_eq!((l.restart_count, l.max_restarts), (1, 2));
    }

    #[test]
    fn no_launcher_is_a_single_process() {
        assert_eq!(launch(&[]).unwrap(), None);
        assert_eq!(launch(&[("WORLD_SIZE", "1")]).unwrap().unwrap().rank, 0);
    }

    #[test]
    fn half_a_launch_is_an_error_that_says_how() {
        for vars in [
            &[("RANK", "0")][..],
            &[("WORLD_SIZE", "2"), ("MASTER_PORT", "1")],
            &[("WORLD_SIZE", "2"), ("RANK", "2"), ("MASTER_PORT", "1")],
            &[("WORLD_SIZE", "two")],
            &[("WORLD_SIZE", "2"), ("RANK", "1")],
        ] {
            let err = launch(vars).unwrap_err().to_string();
            assert!(err.contains("torchrun --no-python"), "{vars:?}: {err}");
        }
    }
}
