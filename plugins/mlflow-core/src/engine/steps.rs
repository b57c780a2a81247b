//! The engine's requests and what their replies mean: the setup steps
//! (experiment, run, or the run to resume), the `log-batch` of what is
//! queued, and the handling of each step's success and refusal.

use super::SEARCH_PAUSE_MS;
use super::{Engine, Item, Note, Outcome, Stage, Step, CREATE_GRACE_MS, MIN_REQUEST_MS};
use crate::metrics::Metric;
use crate::net::Net;
use crate::wire::{self, ApiError, Request};

impl Engine {
    /// The next request to send, if any.
    pub(super) fn next_request(&mut self, now: u64, net: &mut dyn Net) -> Option<(Request, Step)> {
        let plan = &self.plan;
        let name = plan.experiment_name.as_deref().unwrap_or_default();
        let run = self
            .run_id
            .as_deref()
            .or(plan.run_id.as_deref())
            .unwrap_or_default();
        Some(match &mut self.stage {
            Stage::FindExperiment => (wire::get_experiment_by_name(name), Step::FindExperiment),
            Stage::CreateExperiment => (wire::create_experiment(name), Step::CreateExperiment),
            Stage::CreateRun {
                experiment_id,
                start_time,
                lost_at,
            } => {
                let start = *start_time.get_or_insert(now);
                if lost_at.is_some() {
                    let search = wire::search_run(experiment_id, &plan.create_id);
                    (search, Step::SearchRun)
                } else {
                    let mut tags = plan.tags.clone();
                    tags.push(("mlflow.source.name".into(), "trainbox".into()));
                    tags.push(("mlflow.source.type".into(), "LOCAL".into()));
                    tags.push((wire::CREATE_ID_TAG.into(), plan.create_id.clone()));
                    if let Some(parent) = &plan.parent_run_id {
                        tags.push((wire::PARENT_RUN_TAG.into(), parent.clone()));
                    }
                    let request =
                        wire::create_run(experiment_id, start, plan.run_name.as_deref(), &tags);
                    (request, Step::CreateRun)
                }
            }
            Stage::GetParent => (
                wire::get_run(plan.parent_run_id.as_deref().unwrap_or_default()),
                Step::GetParent,
            ),
            Stage::GetRun => (wire::get_run(run), Step::GetRun),
            Stage::ReopenRun => (
                wire::update_run(run, "RUNNING", None, plan.run_name.as_deref()),
                Step::ReopenRun,
            ),
            Stage::Ready => return self.next_batch(net),
            Stage::Failed => return None,
        })
    }

    /// A `log-batch` of the first queued item, or of the first metric items
    /// merged up to the batch limits.
    fn next_batch(&mut self, net: &mut dyn Net) -> Option<(Request, Step)> {
        if let Some(Item::Artifact { .. }) = self.queue.front() {
            return self.next_upload(net).map(|r| (r, Step::Artifact));
        }
        let run = self.run_id.as_deref()?;
        let (request, items, metrics) = match self.queue.front()? {
            Item::Params(p) => (wire::log_batch(run, &[], p, &[]), 1, 0),
            Item::Tags(t) => (wire::log_batch(run, &[], &[], t), 1, 0),
            Item::Artifact { .. } => return None,
            Item::Metrics(_) => {
                let mut merged: Vec<Metric> = Vec::new();
                let mut bytes = 0;
                let mut items = 0;
                for item in &self.queue {
                    let Item::Metrics(m) = item else { break };
                    let size: usize = m.iter().map(wire::metric_size).sum();
                    let fits = merged.len() + m.len() <= wire::MAX_METRICS_PER_BATCH
                        && bytes + size <= wire::MAX_BODY_BYTES;
                    if items > 0 && (self.no_merge || !fits) {
                        break;
                    }
                    merged.extend_from_slice(m);
                    bytes += size;
                    items += 1;
                }
                (wire::log_batch(run, &merged, &[], &[]), items, merged.len())
            }
        };
        Some((request, Step::Batch { items, metrics }))
    }

    /// The upload of the first queued artifact; files that cannot be read,
    /// or a run whose artifacts cannot be uploaded, are given up and counted.
    fn next_upload(&mut self, net: &mut dyn Net) -> Option<Request> {
        while let Some(Item::Artifact { file, path }) = self.queue.front() {
            let (file, path) = (file.clone(), path.clone());
            let root = match &self.artifact_root {
                Some(Ok(root)) => root.clone(),
                Some(Err(why)) => {
                    let why = why.clone();
                    self.give_up_upload(why);
                    continue;
                }
                None => {
                    self.give_up_upload("the run has no artifact_uri".into());
                    continue;
                }
            };
            match net.file_len(&file) {
                Ok(len) => {
                    let upload = wire::Upload { file, len };
                    return Some(wire::upload_artifact(&root, &path, upload));
                }
                Err(e) => self.give_up_upload(format!("cannot read {file} ({e}); was the checkpoint removed (save_total_limit) before it was uploaded?")),
            }
        }
        None
    }

    /// Drops the first queued item, an artifact, with the reason.
    fn give_up_upload(&mut self, why: String) {
        self.queue.pop_front();
        self.unsent_files += 1;
        self.warn(why.clone());
        self.artifact_error = Some(why);
    }

    /// Moves on after a 2xx reply (at `now`).
    pub(super) fn succeeded(
        &mut self,
        step: Step,
        body: &str,
        now: u64,
    ) -> Result<Outcome, String> {
        match step {
            Step::FindExperiment => {
                let (id, lifecycle) = wire::experiment(body)?;
                if lifecycle == "deleted" {
                    let name = self.plan.experiment_name.clone().unwrap_or_default();
                    self.fail(format!(
                        "experiment {name:?} (id {id}) is deleted on {}; restore it (`mlflow experiments restore --experiment-id {id}`) or set another MLFLOW_EXPERIMENT_NAME",
                        self.plan.uri
                    ));
                } else {
                    self.create_run_in(id);
                }
            }
            Step::CreateExperiment => {
                let id = wire::created_experiment(body)?;
                self.create_run_in(id);
            }
            Step::SearchRun => {
                let found = wire::found_runs(body)?;
                if found.len() > 1 {
                    // Two creates reached the server: keep one, delete the rest at the end.
                    self.recreated = true;
                }
                if let Some((run_id, artifacts)) = found.into_iter().next() {
                    self.ready(run_id, &artifacts, Vec::new());
                } else if let Stage::CreateRun { lost_at, .. } = &mut self.stage {
                    // Not there yet: a slow server may still be making it.
                    let since = lost_at.unwrap_or(now);
                    if now.saturating_sub(since) < CREATE_GRACE_MS {
                        return Ok(Outcome::Wait(SEARCH_PAUSE_MS));
                    }
                    *lost_at = None;
                    self.recreated = true;
                }
            }
            Step::CreateRun => {
                let (run_id, artifacts) = wire::created_run(body)?;
                self.ready(run_id, &artifacts, Vec::new());
            }
            Step::GetParent => {
                let info = wire::run_info(body)?;
                let parent = self.plan.parent_run_id.clone().unwrap_or_default();
                if info.lifecycle_stage == "deleted" {
                    self.fail(format!(
                        "MLFLOW_RUN_ID={parent} (the run MLFLOW_NESTED_RUN nests under) is deleted on {}; restore it or unset MLFLOW_NESTED_RUN",
                        self.plan.uri
                    ));
                } else if self.plan.experiment_name.is_some() {
                    self.stage = Stage::FindExperiment;
                } else {
                    self.create_run_in(info.experiment_id);
                }
            }
            Step::Artifact => {
                self.queue.pop_front();
                self.uploaded_files += 1;
            }
            Step::GetRun => {
                let info = wire::run_info(body)?;
                let run_id = self.plan.run_id.clone().unwrap_or_default();
                if info.lifecycle_stage == "deleted" {
                    self.fail(format!(
                        "MLFLOW_RUN_ID={run_id}: the run is deleted on {}; restore it or unset MLFLOW_RUN_ID to start a new run",
                        self.plan.uri
                    ));
                    return Ok(Outcome::Done);
                }
                self.experiment_id = Some(info.experiment_id);
                self.artifact_root = Some(wire::artifact_root(&info.artifact_uri));
                self.plan.params = self.params_to_add(&info.params);
                if self.plan.job_run {
                    let tags = self.plan.tags.clone();
                    self.ready(run_id, &info.artifact_uri, tags);
                } else {
                    self.stage = Stage::ReopenRun;
                }
            }
            Step::ReopenRun => {
                let run_id = self.plan.run_id.clone().unwrap_or_default();
                let tags = self.plan.tags.clone();
                self.ready(run_id, "", tags);
            }
            Step::Batch { items, metrics } => {
                for _ in 0..items {
                    self.queue.pop_front();
                }
                self.queued_metrics -= metrics;
                self.sent_metrics += metrics as u64;
                self.no_merge = false;
            }
        }
        Ok(Outcome::Done)
    }

    /// Deletes the runs other than this one that carry its create id: made
    /// by a create whose reply was lost, which reached the server after
    /// another was sent. Best effort, each request within `timeout_ms`.
    pub(super) fn delete_duplicates(&mut self, net: &mut dyn Net, timeout_ms: u64) {
        let (Some(run_id), Some(experiment_id)) = (self.run_id.clone(), self.experiment_id.clone())
        else {
            return;
        };
        let timeout_ms = timeout_ms.max(MIN_REQUEST_MS);
        let search = wire::search_run(&experiment_id, &self.plan.create_id);
        let found = match net.send(&search, timeout_ms) {
            Ok(r) if (200..300).contains(&r.status) => wire::found_runs(&r.body)
                .unwrap_or_default()
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>(),
            _ => return,
        };
        let uri = self.plan.uri.clone();
        for other in found.into_iter().filter(|id| *id != run_id) {
            match net.send(&wire::delete_run(&other), timeout_ms) {
                Ok(r) if (200..300).contains(&r.status) => self.notes.push(Note::Info(format!(
                    "deleted run {other} on {uri}: an empty duplicate of run {run_id} left by a runs/create whose reply was lost (`mlflow runs restore --run-id {other}` brings it back)"
                ))),
                Ok(r) => self.warn(format!(
                    "run {other} on {uri} is an empty duplicate of run {run_id}, and could not be deleted: {}",
                    ApiError::parse(r.status, &r.body)
                )),
                Err(e) => self.warn(format!(
                    "run {other} on {uri} is an empty duplicate of run {run_id}, and could not be deleted: {e}"
                )),
            }
        }
    }

    /// A resumed run keeps its params: MLflow refuses to change one. Those
    /// that differ are reported, those missing are added.
    fn params_to_add(&mut self, existing: &[(String, String)]) -> Vec<(String, String)> {
        let mut add = Vec::new();
        for (key, value) in std::mem::take(&mut self.plan.params) {
            match existing.iter().find(|(k, _)| *k == key) {
                None => add.push((key, value)),
                Some((_, old)) if *old == value => {}
                Some((_, old)) => self.warn(format!(
                    "param {key} of the resumed run stays {old:?} (MLflow does not allow changing a param; this run has {value:?})"
                )),
            }
        }
        add
    }

    fn create_run_in(&mut self, experiment_id: String) {
        self.stage = Stage::CreateRun {
            experiment_id,
            start_time: None,
            lost_at: None,
        };
    }

    /// The run exists (its artifacts at `artifact_uri`): params and tags go
    /// first, before queued metrics and files.
    fn ready(&mut self, run_id: String, artifact_uri: &str, tags: Vec<(String, String)>) {
        if let Stage::CreateRun { experiment_id, .. } = &self.stage {
            self.experiment_id = Some(experiment_id.clone());
        }
        if !artifact_uri.is_empty() || self.artifact_root.is_none() {
            self.artifact_root = Some(wire::artifact_root(artifact_uri));
        }
        self.run_id = Some(run_id);
        self.stage = Stage::Ready;
        let size = wire::pair_size;
        let (max, bytes) = (wire::MAX_PARAMS_TAGS_PER_BATCH, wire::MAX_BODY_BYTES);
        for chunk in wire::chunks(tags, max, bytes, size).into_iter().rev() {
            self.queue.push_front(Item::Tags(chunk));
        }
        let params = std::mem::take(&mut self.plan.params);
        for chunk in wire::chunks(params, max, bytes, size).into_iter().rev() {
            self.queue.push_front(Item::Params(chunk));
        }
    }

    /// A 4xx: what it means depends on the step.
    pub(super) fn rejected(&mut self, step: Step, error: ApiError) -> Outcome {
        let uri = self.plan.uri.clone();
        match step {
            _ if error.status == 401 => {
                let outcome = self.fail(format!(
                    "{uri} refused the credentials ({error}); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
                ));
                // The final count names the cause only: the fix was said once.
                self.last_error = Some("the credentials were refused (HTTP 401)".into());
                outcome
            }
            _ if error.status == 403 && error.message.contains("Host header") => self.fail(format!(
                "{uri} refused the request's Host header ({error}); start the server with --allowed-hosts naming the host of MLFLOW_TRACKING_URI"
            )),
            _ if error.status == 403 => self.fail(format!(
                "{uri} refused access ({error}); check the permissions of the MLflow user"
            )),
            Step::FindExperiment if error.is("RESOURCE_DOES_NOT_EXIST") => {
                self.stage = Stage::CreateExperiment;
                Outcome::Done
            }
            Step::CreateExperiment if error.is("RESOURCE_ALREADY_EXISTS") => {
                self.stage = Stage::FindExperiment;
                Outcome::Done
            }
            Step::SearchRun => {
                // The server cannot search: create again, delete a duplicate at the end.
                if let Stage::CreateRun { lost_at, .. } = &mut self.stage {
                    *lost_at = None;
                }
                self.recreated = true;
                Outcome::Done
            }
            Step::GetParent if error.is("RESOURCE_DOES_NOT_EXIST") => self.fail(format!(
                "MLFLOW_RUN_ID={}: no such run on {uri} to nest under (MLFLOW_NESTED_RUN); set MLFLOW_RUN_ID to the parent run's id",
                self.plan.parent_run_id.as_deref().unwrap_or_default()
            )),
            Step::Artifact => {
                let path = match self.queue.front() {
                    Some(Item::Artifact { path, .. }) => path.clone(),
                    _ => String::new(),
                };
                self.give_up_upload(format!("{uri} refused the artifact {path}: {error}"));
                Outcome::Done
            }
            Step::GetRun if error.is("RESOURCE_DOES_NOT_EXIST") => self.fail(format!(
                "MLFLOW_RUN_ID={}: no such run on {uri}; unset MLFLOW_RUN_ID to start a new run",
                self.plan.run_id.as_deref().unwrap_or_default()
            )),
            Step::Batch { items, .. } if items > 1 => {
                // One of the merged items is refused: find it, one by one.
                self.no_merge = true;
                Outcome::Done
            }
            Step::Batch { .. } if error.is("RESOURCE_DOES_NOT_EXIST") => {
                self.fail(format!("the run is gone from {uri} ({error})"))
            }
            Step::Batch { .. } => {
                match self.queue.pop_front() {
                    Some(Item::Metrics(m)) => {
                        self.queued_metrics -= m.len();
                        self.unsent_metrics += m.len() as u64;
                        let keys: Vec<&str> = m.iter().map(|m| m.key.as_str()).collect();
                        self.last_error = Some(error.to_string());
                        self.warn(format!(
                            "{uri} refused {} metrics ({}): {error}",
                            m.len(),
                            keys.join(", ")
                        ));
                    }
                    Some(Item::Params(p)) => self.warn(format!(
                        "{uri} refused {} params: {error}",
                        p.len()
                    )),
                    Some(Item::Tags(t)) => self.warn(format!(
                        "{uri} refused {} tags: {error}",
                        t.len()
                    )),
                    Some(Item::Artifact { .. }) | None => {}
                }
                Outcome::Done
            }
            _ => self.fail(format!("{uri} refused to set up the run: {error}")),
        }
    }
}
