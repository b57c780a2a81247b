//! The integrations when a run is stopped or a server is slow, read back by
//! the real tools: an interrupted training's MLflow run ends KILLED (on the
//! real tracking server) and its W&B run exits with wandb's Ctrl-C code; a
//! `runs/create` whose reply timed out (a cold server, simulated by a proxy
//! on 127.0.0.1 that holds the first create before passing it on) leaves
//! exactly one MLflow run, with every metric.

use super::mlflow::{expected_history, mlflow_query, runs_of, server, unique};
use super::wandb::{leet, run_folder};
use crate::interrupt::{argv, Spawned};
use crate::util::{fresh_dir, Run};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn mlflow_run_of_an_interrupted_training_ends_killed() {
    let uri = server();
    let experiment = unique("mlflow_sigint");
    let dir = fresh_dir("mlflow_sigint");
    let args = argv(&dir, &["--report_to", "mlflow", "--save_steps", "10"]);
    let env = [
        ("MLFLOW_TRACKING_URI", uri.as_str()),
        ("MLFLOW_EXPERIMENT_NAME", experiment.as_str()),
    ];
    let mut run = Spawned::start(&dir, &args, &env);
    run.wait_for_step(12);
    run.signal("INT");
    let status = run.wait(60);
    let stdout = std::fs::read_to_string(dir.join("stdout.txt")).unwrap();
    assert_eq!(status.code(), Some(130), "{}", run.stderr());
    let runs = runs_of(&experiment);
    let runs = runs.as_array().expect("the experiment exists");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "KILLED", "{stdout}\n{}", run.stderr());
    assert!(stdout.contains("ended KILLED"), "{stdout}");
    let losses = runs[0]["history"]["loss"].as_array().unwrap().len();
    assert!(losses >= 2, "the losses before the interrupt: {runs:?}");
}

/// A proxy to `upstream` that holds the first `runs/create` for `hold`
/// before passing it on, as a cold server that takes that long to answer
/// would; every other request goes through at once. Returns its URI and a
/// receiver that hears when the held request has been answered.
fn cold_proxy(upstream: &str, hold: Duration) -> (String, Receiver<()>) {
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let held = Arc::new(AtomicBool::new(false));
    let (answered, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (upstream, held, answered) = (upstream.clone(), held.clone(), answered.clone());
            std::thread::spawn(move || {
                if let Ok(true) = forward(client, &upstream, &held, hold) {
                    let _ = answered.send(());
                }
            });
        }
    });
    (uri, done)
}

/// Passes one request on (with `connection: close`) and its reply back;
/// `true` when it was the held one.
fn forward(
    client: TcpStream,
    upstream: &str,
    held: &AtomicBool,
    hold: Duration,
) -> std::io::Result<bool> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = String::new();
    reader.read_line(&mut head)?;
    let mut headers = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            headers.push_str(&line);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let holding = head.contains("/runs/create") && !held.swap(true, Ordering::SeqCst);
    if holding {
        std::thread::sleep(hold);
    }
    let mut server = TcpStream::connect(upstream)?;
    write!(server, "{head}{headers}connection: close\r\n\r\n")?;
    server.write_all(&body)?;
    let mut reply = Vec::new();
    server.read_to_end(&mut reply)?;
    let mut client = client;
    let _ = client.write_all(&reply);
    Ok(holding)
}

#[test]
fn mlflow_create_that_times_out_on_a_cold_server_leaves_exactly_one_run() {
    let experiment = unique("mlflow_cold");
    // The experiment exists: the plugin's first requests are a quick
    // get-by-name, then the create, which gets the whole budget.
    mlflow_query(
        "out = client.create_experiment(sys.argv[2])",
        &[&experiment],
    );
    let (proxy, answered) = cold_proxy(&server(), Duration::from_millis(1500));
    let done = Run::regression("mlflow_cold")
        .args(&["--report_to", "mlflow", "--logging_steps", "5"])
        .env("MLFLOW_TRACKING_URI", &proxy)
        .env("MLFLOW_EXPERIMENT_NAME", &experiment)
        .ok();
    // The held create has reached the server by now (or the plugin found it).
    answered
        .recv_timeout(Duration::from_secs(30))
        .expect("the held runs/create was passed on");
    let runs = runs_of(&experiment);
    let runs = runs.as_array().expect("the experiment exists");
    assert_eq!(
        runs.len(),
        1,
        "one run, not a second empty one beside it: {runs:?}\n{}\n{}",
        done.stdout,
        done.stderr
    );
    assert_eq!(runs[0]["status"], "FINISHED");
    assert_eq!(
        runs[0]["history"],
        expected_history(&done),
        "{}",
        done.stdout
    );
}

#[test]
fn wandb_run_of_an_interrupted_training_exits_with_wandbs_ctrl_c_code() {
    let dir = fresh_dir("wandb_sigint");
    let args = argv(&dir, &["--report_to", "wandb", "--save_steps", "1000"]);
    let mut run = Spawned::start(&dir, &args, &[("WANDB_MODE", "offline")]);
    run.wait_for_step(5);
    run.signal("INT");
    assert_eq!(run.wait(60).code(), Some(130), "{}", run.stderr());
    let (folder, id) = run_folder(&dir.join("wandb"));
    let s = &leet(
        &["--summary", "--json"],
        &folder.join(format!("run-{id}.wandb")),
    )[0];
    assert_eq!(s["exit_code"].as_i64(), Some(255), "{s:#}");
    assert_ne!(s["state"], "finished", "{s:#}");
}
