//! The engine against the fake server: nested and job runs, artifact
//! uploads, refused credentials.

use super::tests::{infos, plan, points, warns};
use super::Engine;
use crate::fake_server::FakeServer;

fn parent_run(server: &mut FakeServer) {
    server.experiments.push(("7".into(), "outer".into()));
    server.runs.push(crate::fake_server::FakeRun {
        id: "parent".into(),
        experiment_id: "7".into(),
        name: "sweep".into(),
        status: "RUNNING".into(),
        ..Default::default()
    });
}

#[test]
fn a_nested_run_is_a_new_run_tagged_with_its_parent_in_the_parents_experiment() {
    let mut server = FakeServer::new();
    parent_run(&mut server);
    let mut p = plan(None);
    p.parent_run_id = Some("parent".into());
    let mut e = Engine::new(p);
    e.pump(&mut server, 100, false);
    e.log(points(&["loss"], 1));
    e.finish(&mut server, "FINISHED", 8000);
    let child = e.run_id().unwrap().to_string();
    assert_ne!(child, "parent");
    let run = server.run(&child);
    assert_eq!(run.experiment_id, "7");
    assert!(run
        .tags
        .contains(&("mlflow.parentRunId".into(), "parent".into())));
    assert_eq!(run.status, "FINISHED");
    let parent = server.run("parent");
    assert_eq!(parent.status, "RUNNING", "the parent is left alone");
    assert!(parent.metrics.is_empty());
}

#[test]
fn a_nested_run_under_a_missing_parent_fails_with_the_fix() {
    let mut server = FakeServer::new();
    let mut p = plan(None);
    p.parent_run_id = Some("nope".into());
    let mut e = Engine::new(p);
    e.pump(&mut server, 100, false);
    let notes = e.take_notes();
    assert!(
        warns(&notes)[0].contains("MLFLOW_RUN_ID=nope: no such run on http://127.0.0.1:5000 to nest under (MLFLOW_NESTED_RUN)"),
        "{notes:?}"
    );
    assert_eq!(server.runs.len(), 0);
}

#[test]
fn a_job_run_is_logged_to_but_neither_reopened_nor_ended() {
    let mut server = FakeServer::new();
    parent_run(&mut server);
    let mut p = plan(None);
    p.run_id = Some("parent".into());
    p.job_run = true;
    p.params.clear();
    p.tags.clear();
    let mut e = Engine::new(p);
    e.pump(&mut server, 100, false);
    e.log(points(&["loss"], 1));
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(server.endpoints(), ["GET runs/get", "POST runs/log-batch"]);
    assert_eq!(server.run("parent").status, "RUNNING");
    assert_eq!(server.run("parent").metrics.len(), 1);
    assert!(infos(&e.take_notes())[0].contains("left RUNNING for its job"));
}

#[test]
fn artifacts_are_uploaded_under_the_runs_artifact_root_and_missing_files_counted() {
    let mut server = FakeServer::new();
    server.files = vec![
        (
            "/output/checkpoint-8/model.safetensors".into(),
            vec![1, 2, 3],
        ),
        (
            "/output/checkpoint-8/trainer_state.json".into(),
            b"{}".to_vec(),
        ),
    ];
    let mut e = Engine::new(plan(None));
    e.upload(vec![
        (
            "/output/checkpoint-8/model.safetensors".into(),
            "checkpoint-8/model.safetensors".into(),
        ),
        (
            "/output/checkpoint-8/gone.pt".into(),
            "checkpoint-8/gone.pt".into(),
        ),
        (
            "/output/checkpoint-8/trainer_state.json".into(),
            "checkpoint-8/trainer_state.json".into(),
        ),
    ]);
    e.finish(&mut server, "FINISHED", 8000);
    let run = e.run_id().unwrap().to_string();
    assert_eq!(
        server.artifacts,
        [
            (
                format!("0/{run}/artifacts/checkpoint-8/model.safetensors"),
                vec![1, 2, 3]
            ),
            (
                format!("0/{run}/artifacts/checkpoint-8/trainer_state.json"),
                b"{}".to_vec()
            ),
        ]
    );
    assert_eq!(e.file_counts(), (2, 1));
    let notes = e.take_notes();
    assert!(
        warns(&notes)[0].contains("cannot read /output/checkpoint-8/gone.pt"),
        "{notes:?}"
    );
    assert!(
        infos(&notes)
            .iter()
            .any(|n| n.contains("2 artifact files uploaded")),
        "{notes:?}"
    );
    assert!(
        infos(&notes)
            .iter()
            .any(|n| n.starts_with("1 artifact files could not be uploaded")),
        "{notes:?}"
    );
}

#[test]
fn artifacts_of_a_server_that_does_not_proxy_them_are_counted_with_the_fix() {
    let mut server = FakeServer::new();
    let mut e = Engine::new(plan(None));
    e.pump(&mut server, 100, false);
    // As a server started with --default-artifact-root DIR answers.
    e.force_artifact_uri("/srv/mlruns/0/abc/artifacts");
    e.upload(vec![("/output/x".into(), "checkpoint-1/x".into())]);
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(e.file_counts(), (0, 1));
    let notes = e.take_notes();
    assert!(
        warns(&notes)
            .iter()
            .any(|w| w.contains("--serve-artifacts")),
        "{notes:?}"
    );
}

#[test]
fn refused_credentials_stop_sending_with_one_message_naming_the_variables() {
    let mut server = FakeServer::new();
    server.unauthorized = true;
    let mut e = Engine::new(plan(Some("exp")));
    for step in 1..=3 {
        e.log(points(&["loss"], step));
        e.pump(&mut server, 40, false);
    }
    e.finish(&mut server, "FINISHED", 8000);
    assert_eq!(server.requests.len(), 1, "nothing sent after the 401");
    let notes = e.take_notes();
    let warns = warns(&notes);
    assert_eq!(warns.len(), 1, "{notes:?}");
    assert!(
        warns[0].contains("refused the credentials (HTTP 401: You are not authenticated.); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        "{notes:?}"
    );
    assert_eq!(
        infos(&notes),
        ["3 metrics could not be sent to http://127.0.0.1:5000: the credentials were refused (HTTP 401)"]
    );
}
