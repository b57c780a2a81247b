//! The engine against the fake server: setup, batching, budgets, resume,
//! and every way the server can fail.

use super::{Engine, Note, Plan, FINISH_RETRIES, MAX_QUEUED_METRICS};
use crate::fake_server::{FakeServer, Health};
use crate::metrics::Metric;

const URI: &str = "http://127.0.0.1:5000";

pub(super) fn plan(experiment: Option<&str>) -> Plan {
    Plan {
        uri: URI.into(),
        experiment_name: experiment.map(String::from),
        run_id: None,
        parent_run_id: None,
        job_run: false,
        run_name: Some("demo".into()),
        params: vec![
            ("learning_rate".into(), "5e-05".into()),
            ("seed".into(), "42".into()),
        ],
        tags: vec![("team".into(), "nlp".into())],
        create_id: "c0ffee".into(),
    }
}

pub(super) fn points(keys: &[&str], step: u64) -> Vec<Metric> {
    keys.iter()
        .map(|k| Metric {
            key: k.to_string(),
            value: step as f64 / 10.0,
            timestamp: 1000 + step,
            step,
        })
        .collect()
}

pub(super) fn infos(notes: &[Note]) -> Vec<&str> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Info(t) => Some(t.as_str()),
            Note::Warn(_) => None,
        })
        .collect()
}

pub(super) fn warns(notes: &[Note]) -> Vec<&str> {
    notes
        .iter()
        .filter_map(|n| match n {
            Note::Warn(t) => Some(t.as_str()),
            Note::Info(_) => None,
        })
        .collect()
}

#[test]
fn a_run_from_start_to_finish() {
    let mut server = FakeServer::new();
    let mut e = Engine::new(plan(Some("exp")));
    e.pump(&mut server, 40, false);
    e.log(points(&["loss", "learning_rate"], 5));
    e.pump(&mut server, 40, false);
    e.log(points(&["eval_loss"], 8));
    e.pump(&mut server, 40, false);
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(
        server.endpoints(),
        [
            "GET experiments/get-by-name",
            "POST experiments/create",
            "POST runs/create",
            "POST runs/log-batch",
            "POST runs/log-batch",
            "POST runs/log-batch",
            "POST runs/update",
        ]
    );
    let run = server.run("run0");
    assert_eq!(
        (run.experiment_id.as_str(), run.name.as_str()),
        ("1", "demo")
    );
    assert_eq!(run.status, "FINISHED");
    assert!(run.end_time.is_some());
    assert_eq!(run.params, plan(None).params);
    assert!(run.tags.contains(&("team".into(), "nlp".into())));
    let got: Vec<(&str, u64)> = run.metrics.iter().map(|m| (m.0.as_str(), m.2)).collect();
    assert_eq!(got, [("loss", 5), ("learning_rate", 5), ("eval_loss", 8)]);
    assert_eq!(e.counts(), (3, 0));
    let notes = e.take_notes();
    assert_eq!(
        infos(&notes),
        ["run run0: 3 metrics logged, ended FINISHED; see http://127.0.0.1:5000/#/experiments/1/runs/run0"]
    );
    assert!(warns(&notes).is_empty(), "{notes:?}");
}

#[test]
fn an_existing_experiment_is_reused_and_no_name_means_default() {
    let mut server = FakeServer::new();
    server.experiments.push(("1".into(), "exp".into()));
    let mut e = Engine::new(plan(Some("exp")));
    e.pump(&mut server, 40, false);
    assert_eq!(
        server.endpoints()[..2],
        ["GET experiments/get-by-name", "POST runs/create"]
    );
    assert_eq!(server.run("run0").experiment_id, "1");

    let mut e = Engine::new(plan(None));
    e.pump(&mut server, 40, false);
    assert_eq!(server.run("run1").experiment_id, "0");
}

#[test]
fn each_event_keeps_to_its_budget_and_the_rest_waits() {
    let mut server = FakeServer::new();
    server.latency_ms = 12;
    let mut e = Engine::new(plan(Some("exp")));
    e.pump(&mut server, 40, false);
    // Requests at 0, 12 and 24 ms; at 36 ms less than 10 ms are left.
    assert_eq!(server.requests.len(), 3);
    assert_eq!(server.clock - 1_000_000, 36);
    e.pump(&mut server, 40, false);
    assert_eq!(server.requests.len(), 4, "the params, at the next event");
    assert_eq!(server.run("run0").params.len(), 2);
}

#[test]
fn a_slow_server_times_out_within_the_budget() {
    let mut server = FakeServer::new();
    server.latency_ms = 500;
    let mut e = Engine::new(plan(None));
    e.pump(&mut server, 40, false);
    assert_eq!(server.requests.len(), 1);
    assert_eq!(
        server.clock - 1_000_000,
        40,
        "the request gave up at the budget"
    );
    assert!(warns(&e.take_notes())[0].contains("timed out"));
}

#[test]
fn params_go_in_batches_of_100() {
    let mut server = FakeServer::new();
    let mut p = plan(None);
    p.params = (0..250).map(|i| (format!("p{i}"), i.to_string())).collect();
    let mut e = Engine::new(p);
    e.pump(&mut server, 1000, false);
    assert_eq!(
        server
            .requests
            .iter()
            .filter(|r| r.ends_with("log-batch"))
            .count(),
        3
    );
    assert_eq!(server.run("run0").params.len(), 250);
}

#[test]
fn metrics_queued_while_the_server_is_down_are_sent_in_one_batch_later() {
    let mut server = FakeServer::new();
    server.health = Health::Down;
    let mut e = Engine::new(plan(None));
    e.pump(&mut server, 40, false);
    for step in 1..=5 {
        e.log(points(&["loss"], step));
        e.pump(&mut server, 40, false);
    }
    assert_eq!(server.requests.len(), 1, "one try per backoff period");
    let notes = e.take_notes();
    assert_eq!(warns(&notes).len(), 1, "{notes:?}");
    assert!(warns(&notes)[0].contains("cannot reach http://127.0.0.1:5000 (connection refused)"));
    server.health = Health::Up;
    server.clock += 200;
    e.pump(&mut server, 40, false);
    assert_eq!(
        server.endpoints()[1..],
        [
            "POST runs/create",
            "POST runs/log-batch",
            "POST runs/log-batch"
        ],
        "params, then the 5 queued entries merged"
    );
    assert_eq!(server.run("run0").metrics.len(), 5);
    assert_eq!(
        infos(&e.take_notes()),
        ["http://127.0.0.1:5000 answers again"]
    );
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(e.counts(), (5, 0));
}

#[test]
fn a_dead_server_costs_little_and_every_metric_is_counted() {
    let mut server = FakeServer::new();
    server.health = Health::Down;
    let mut e = Engine::new(plan(Some("exp")));
    for step in 1..=4 {
        e.log(points(&["loss", "grad_norm"], step));
        e.pump(&mut server, 40, false);
        server.clock += 50;
    }
    let during = server.requests.len();
    assert!(during <= 2, "{during} requests");
    let before = server.clock;
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(server.requests.len() - during, 1 + FINISH_RETRIES as usize);
    assert!(server.clock - before < 2000, "finish gives up in seconds");
    assert_eq!(e.counts(), (0, 8));
    let notes = e.take_notes();
    assert_eq!(
        infos(&notes),
        ["8 metrics could not be sent to http://127.0.0.1:5000: connection refused"]
    );
}

#[test]
fn a_denied_origin_stops_everything_and_names_the_grant() {
    let mut server = FakeServer::new();
    server.health = Health::Denied;
    let mut e = Engine::new(plan(None));
    e.log(points(&["loss"], 1));
    e.pump(&mut server, 40, false);
    e.log(points(&["loss"], 2));
    e.pump(&mut server, 40, false);
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(server.requests.len(), 1, "no retry after a denial");
    let notes = e.take_notes();
    assert!(
        warns(&notes)[0].contains(
            r#"add plugins.mlflow.allow_http = ["http://127.0.0.1:5000"] to the run config"#
        ),
        "{notes:?}"
    );
    assert!(
        infos(&notes)[0].starts_with("2 metrics could not be sent"),
        "{notes:?}"
    );
}

#[test]
fn a_create_whose_reply_was_lost_is_found_not_repeated() {
    let mut server = FakeServer::new();
    server.health = Health::LateReply;
    let mut e = Engine::new(plan(None));
    e.pump(&mut server, 40, false);
    assert_eq!(server.runs.len(), 1, "the server made the run");
    server.health = Health::Up;
    server.clock += 1000;
    e.pump(&mut server, 40, false);
    assert_eq!(server.endpoints()[1], "POST runs/search");
    assert_eq!(server.runs.len(), 1, "no second run");
    assert_eq!(e.run_id(), Some("run0"));
}

#[test]
fn a_create_a_cold_server_makes_late_is_waited_for_not_repeated() {
    let mut server = FakeServer::new();
    server.slow_create_ms = Some(1500);
    let mut e = Engine::new(plan(None));
    e.pump(&mut server, 40, false);
    assert!(server.runs.is_empty(), "the server is still making it");
    e.log(points(&["loss"], 1));
    e.finish(&mut server, "FINISHED", 8000);
    let creates = server
        .endpoints()
        .iter()
        .filter(|r| **r == "POST runs/create")
        .count();
    assert_eq!(creates, 1, "{:?}", server.endpoints());
    assert_eq!(server.runs.len(), 1);
    let run = server.run("run0");
    assert_eq!((run.status.as_str(), run.metrics.len()), ("FINISHED", 1));
    assert!(run
        .tags
        .contains(&("trainbox.create_id".into(), "c0ffee".into())));
}

#[test]
fn a_create_lost_past_the_grace_is_sent_again_and_its_duplicate_deleted() {
    let mut server = FakeServer::new();
    server.slow_create_ms = Some(20_000);
    let mut e = Engine::new(plan(None));
    for _ in 0..8 {
        e.pump(&mut server, 40, false);
        server.clock += 1000;
    }
    assert_eq!(e.run_id(), Some("run0"), "created again after the grace");
    e.log(points(&["loss"], 1));
    e.pump(&mut server, 40, false);
    server.clock += 20_000;
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(server.runs.len(), 2, "the first create landed after all");
    let live: Vec<&str> = server.live_runs().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(live, ["run0"]);
    assert_eq!(server.run("run0").metrics.len(), 1);
    let notes = e.take_notes();
    assert!(
        infos(&notes).iter().any(|i| i.starts_with(
            "deleted run run1 on http://127.0.0.1:5000: an empty duplicate of run run0"
        )),
        "{notes:?}"
    );
}

#[test]
fn a_late_log_batch_reply_is_resent_without_duplicates() {
    let mut server = FakeServer::new();
    let mut e = Engine::new(plan(None));
    e.pump(&mut server, 40, false);
    server.health = Health::LateReply;
    e.log(points(&["loss"], 1));
    e.pump(&mut server, 40, false);
    server.health = Health::Up;
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(server.run("run0").metrics.len(), 1);
    assert_eq!(e.counts(), (1, 0));
}

#[test]
fn a_refused_entry_is_found_dropped_and_counted_the_others_go() {
    let mut server = FakeServer::new();
    server.bad_key = Some("bad".into());
    server.health = Health::Down;
    let mut e = Engine::new(plan(None));
    e.log(points(&["loss"], 1));
    e.log(points(&["bad", "loss2"], 2));
    e.log(points(&["loss"], 3));
    e.pump(&mut server, 40, false);
    server.health = Health::Up;
    e.finish(&mut server, "FINISHED", 8000);
    let run = server.run("run0");
    let steps: Vec<u64> = run.metrics.iter().map(|m| m.2).collect();
    assert_eq!(steps, [1, 3]);
    assert_eq!(e.counts(), (2, 2));
    let notes = e.take_notes();
    assert!(
        warns(&notes).iter().any(|w| w
            .contains("refused 2 metrics (bad, loss2): HTTP 400 INVALID_PARAMETER_VALUE: bad key")),
        "{notes:?}"
    );
    assert!(
        infos(&notes)
            .iter()
            .any(|i| i.starts_with("2 metrics could not be sent")),
        "{notes:?}"
    );
    assert_eq!(run.status, "FINISHED");
}

#[test]
fn a_resumed_run_keeps_its_params_gets_new_ones_and_is_renamed() {
    let mut server = FakeServer::new();
    server.runs.push(crate::fake_server::FakeRun {
        id: "old".into(),
        experiment_id: "0".into(),
        name: "first".into(),
        status: "FINISHED".into(),
        params: vec![("learning_rate".into(), "0.001".into())],
        ..Default::default()
    });
    let mut p = plan(Some("ignored"));
    p.run_id = Some("old".into());
    let mut e = Engine::new(p);
    e.pump(&mut server, 100, false);
    e.log(points(&["loss"], 1));
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(
        server.endpoints(),
        [
            "GET runs/get",
            "POST runs/update",
            "POST runs/log-batch",
            "POST runs/log-batch",
            "POST runs/log-batch",
            "POST runs/update"
        ]
    );
    let run = server.run("old");
    assert_eq!(run.name, "demo");
    assert_eq!(run.status, "FINISHED");
    assert_eq!(
        run.params,
        [
            ("learning_rate".into(), "0.001".into()),
            ("seed".into(), "42".into())
        ]
    );
    assert!(run.tags.contains(&("team".into(), "nlp".into())));
    assert_eq!(server.runs.len(), 1);
    let notes = e.take_notes();
    assert!(
        warns(&notes)[0].contains("param learning_rate of the resumed run stays \"0.001\""),
        "{notes:?}"
    );
}

#[test]
fn resuming_a_missing_run_fails_with_the_fix() {
    let mut server = FakeServer::new();
    let mut p = plan(None);
    p.run_id = Some("nope".into());
    let mut e = Engine::new(p);
    e.pump(&mut server, 40, false);
    e.log(points(&["loss"], 1));
    e.finish(&mut server, "FINISHED", 8000);
    let notes = e.take_notes();
    assert!(
        warns(&notes)[0].contains("MLFLOW_RUN_ID=nope: no such run on http://127.0.0.1:5000; unset MLFLOW_RUN_ID to start a new run"),
        "{notes:?}"
    );
    assert_eq!(e.counts(), (0, 1));
    assert_eq!(server.requests.len(), 1);
}

#[test]
fn an_aborted_run_ends_failed() {
    let mut server = FakeServer::new();
    let mut e = Engine::new(plan(None));
    e.log(points(&["loss"], 1));
    e.finish(&mut server, "FAILED", 8000);
    assert_eq!(server.run("run0").status, "FAILED");
    assert_eq!(server.run("run0").metrics.len(), 1);
}

#[test]
fn a_full_queue_gives_up_the_oldest_metrics() {
    let mut e = Engine::new(plan(None));
    let many: Vec<Metric> = (0..MAX_QUEUED_METRICS as u64 + 1)
        .map(|i| Metric {
            key: format!("m{i}"),
            value: 1.0,
            timestamp: 1,
            step: 1,
        })
        .collect();
    e.log(many);
    assert_eq!(e.counts(), (0, 1000), "the oldest batch of 1000");
    assert!(warns(&e.take_notes())[0].contains("the oldest are given up"));
}
