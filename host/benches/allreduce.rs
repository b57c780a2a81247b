//! `make bench`: what data parallel costs per step in collectives. Two ranks
//! in two threads of one process join a Gloo group on 127.0.0.1 through
//! `trainbox::dist::World` (the trainer's own code path), then time, with
//! one intra-op thread as torchrun sets it:
//!
//! - `World::average_gradients` on gradients of the demo's shapes (the
//!   `sort` task's trainable variables, default options): flatten into
//!   25 MB buckets, all-reduce (sum), divide, copy back;
//! - the same bytes as one flat tensor all-reduced by a bare c10d
//!   `ProcessGroup` (the wire and Gloo alone, without the bucket copies);
//! - `World::any` on 5 flags (the control flags agreed after every event)
//!   and on 2 (the stop request agreed after every step).
//!
//! Prints the median microseconds per collective over `REPEATS` rounds (the
//! four take turns, as collectives are spread over a step) after a
//! warm-up, as seen by rank 0, and what the bookkeeping adds per step.

use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};
use trainbox::dist::{Launch, World};
use trainbox_torch_ext::c10d::{Backend, GroupOptions, ProcessGroup, ReduceOp};

const REPEATS: usize = 200;
const WARMUP: usize = 20;
/// Events whose control flags are agreed in a training step without
/// gradient accumulation: step begin, pre-optimizer step, optimizer step,
/// step end (`Trainer::fire`).
const EVENTS_PER_STEP: f64 = 4.0;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Microseconds per call of each of `ops`, median over `REPEATS` calls
/// after `WARMUP`; the ops take turns, so that drift in the machine's
/// load reaches them all alike.
fn time<const N: usize>(ops: &mut [&mut dyn FnMut(); N]) -> [f64; N] {
    let mut samples: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(REPEATS));
    for i in 0..WARMUP + REPEATS {
        for (op, times) in ops.iter_mut().zip(samples.iter_mut()) {
            let start = Instant::now();
            op();
            if i >= WARMUP {
                times.push(start.elapsed().as_secs_f64() * 1e6);
            }
        }
    }
    samples.map(median)
}

/// One rank's timings: average_gradients, bare all-reduce, 5 flags, 2 flags.
fn rank(rank: usize, ports: (u16, u16), shapes: Vec<Vec<i64>>) -> [f64; 4] {
    let launch = Launch {
        rank,
        world_size: 2,
        local_rank: rank,
        local_world_size: 2,
        master_addr: "127.0.0.1".into(),
        master_port: ports.0,
        agent_store: false,
        restart_count: 0,
        max_restarts: 0,
    };
    let timeout = Duration::from_secs(60);
    let world = World::join(&launch, Backend::Gloo, timeout, Device::Cpu).unwrap();
    let group = ProcessGroup::new(&GroupOptions {
        host: "127.0.0.1".into(),
        port: ports.1,
        rank,
        world_size: 2,
        serve_store: rank == 0,
        prefix: "bench/".into(),
        timeout,
        backend: Backend::Gloo,
        device_index: 0,
    })
    .unwrap();
    let grads: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::randn(s.as_slice(), (Kind::Float, Device::Cpu)))
        .collect();
    let numel: i64 = grads.iter().map(Tensor::numel).sum::<usize>() as i64;
    let flat = Tensor::randn([numel], (Kind::Float, Device::Cpu));
    let mut average = || world.average_gradients(&grads).unwrap();
    let mut bare = || {
        group
            .all_reduce(&flat, ReduceOp::Sum)
            .unwrap()
            .wait()
            .unwrap()
    };
    let mut five = || {
        let mut flags = [rank == 1, false, false, true, false];
        world.any("bench", &mut flags).unwrap();
    };
    let mut two = || {
        let mut flags = [false, rank == 0];
        world.any("bench", &mut flags).unwrap();
    };
    let times = time(&mut [&mut average, &mut bare, &mut five, &mut two]);
    world.barrier("bench end").unwrap();
    times
}

fn main() {
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let task = trainbox::tasks::build("sort", &Default::default()).unwrap();
    let shapes: Vec<Vec<i64>> = task
        .model
        .var_store()
        .trainable_variables()
        .iter()
        .map(Tensor::size)
        .collect();
    let params: i64 = shapes.iter().map(|s| s.iter().product::<i64>()).sum();
    let bytes = params * 4;
    let ports = (free_port(), free_port());
    let handles: Vec<_> = (0..2)
        .map(|r| {
            let shapes = shapes.clone();
            std::thread::spawn(move || rank(r, ports, shapes))
        })
        .collect();
    let results: Vec<[f64; 4]> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let [average, bare, five, two] = results[0];
    println!(
        "all-reduce over Gloo, 2 ranks (threads of one process) on 127.0.0.1, 1 intra-op thread, \
         median of {REPEATS} rounds (after {WARMUP}), rank 0:"
    );
    println!(
        "  demo gradients: {} tensors, {params} float32 = {:.2} MB ({bytes} bytes), one bucket",
        shapes.len(),
        bytes as f64 / 1e6
    );
    let row = |what: &str, us: f64| println!("  {what:<52} {us:>10.1} µs");
    row("World::average_gradients (bucket, all-reduce, /2)", average);
    row("bare ProcessGroup all-reduce of the same bytes", bare);
    row("World::any, 5 flags (control, after every event)", five);
    row("World::any, 2 flags (stop request, every step)", two);
    row(
        "bookkeeping per step (4 events x 5 flags + 2 flags)",
        EVENTS_PER_STEP * five + two,
    );
    row(
        "collectives per step (gradients + bookkeeping)",
        average + EVENTS_PER_STEP * five + two,
    );
}
