//! The MLflow run's life on the server, as a state machine driven by the
//! plugin's events: find or create the experiment, create (or resume) the
//! run, then send what is queued (params, tags, metrics) in `log-batch`
//! calls, and end the run FINISHED or FAILED.
//!
//! Each event gives the engine a time budget ([`Engine::pump`]); it sends
//! until the budget or the queue runs out. A server that does not answer,
//! answers 5xx or is unreachable costs one failed request per backoff
//! period, and what could not be sent waits for a later event or `finish`,
//! which retries a few times. An error that retrying cannot fix (the origin
//! not granted, bad credentials, a run that does not exist) stops all
//! sending. No metric is dropped silently: whatever is given up is counted
//! and reported at the end.

use crate::metrics::Metric;
use crate::net::{origin, Net, NetError};
use crate::wire::{self, ApiError, Request};
use std::collections::{BTreeSet, VecDeque};

#[cfg(test)]
mod run_tests;
mod steps;
#[cfg(test)]
mod tests;

/// The time a request gets at least; with less left, it waits for a later call.
pub const MIN_REQUEST_MS: u64 = 10;
/// First wait after a failure; it doubles up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: u64 = 100;
pub const MAX_BACKOFF_MS: u64 = 5_000;
/// Retries of a failing request at `finish`, waiting 200, 400, 800 ms.
pub const FINISH_RETRIES: u32 = 3;
/// Metrics kept waiting for the server at most; older ones are given up.
pub const MAX_QUEUED_METRICS: usize = 100_000;
/// How long a `runs/create` whose reply was lost is looked for (a slow
/// server may still be making the run) before another create is sent.
pub const CREATE_GRACE_MS: u64 = 5_000;
/// The pause between two looks for it.
pub const SEARCH_PAUSE_MS: u64 = 250;

/// What the plugin is asked to log to, from the environment and the args.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The tracking URI (for messages; `Net` sends relative to it).
    pub uri: String,
    pub experiment_name: Option<String>,
    /// Resume this run (`MLFLOW_RUN_ID`).
    pub run_id: Option<String>,
    /// Start a new run nested under this one (`MLFLOW_NESTED_RUN` with
    /// `MLFLOW_RUN_ID`): tagged `mlflow.parentRunId`, as mlflow's
    /// `start_run(nested=True)` under an active run.
    pub parent_run_id: Option<String>,
    /// The run `run_id` names belongs to someone else (an Azure ML job): it
    /// is neither set RUNNING nor ended.
    pub job_run: bool,
    pub run_name: Option<String>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    /// The value of the [`wire::CREATE_ID_TAG`] tag of the run created.
    pub create_id: String,
}

/// A message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Something went wrong (stderr).
    Warn(String),
    /// What happened (stdout).
    Info(String),
}

/// Where the setup is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stage {
    FindExperiment,
    CreateExperiment,
    /// `start_time` is fixed at the first attempt; `lost_at`, when a
    /// create's reply never came: search for the run (by its create id)
    /// for [`CREATE_GRACE_MS`] before creating another.
    CreateRun {
        experiment_id: String,
        start_time: Option<u64>,
        lost_at: Option<u64>,
    },
    GetParent,
    GetRun,
    ReopenRun,
    Ready,
    Failed,
}

/// Something queued for `log-batch`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    Params(Vec<(String, String)>),
    Tags(Vec<(String, String)>),
    Metrics(Vec<Metric>),
    /// A file (`file`, the plugin's path) to upload as the artifact `path`.
    Artifact {
        file: String,
        path: String,
    },
}

/// What a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    FindExperiment,
    CreateExperiment,
    SearchRun,
    CreateRun,
    GetParent,
    GetRun,
    ReopenRun,
    /// The upload of the first queued item, an artifact.
    Artifact,
    /// The first `n` queued items.
    Batch {
        items: usize,
        metrics: usize,
    },
}

/// How a request ended, for the retry logic.
pub(super) enum Outcome {
    Done,
    Retry,
    /// Nothing failed, but the next request waits this many milliseconds.
    Wait(u64),
    Stop,
}

pub struct Engine {
    plan: Plan,
    stage: Stage,
    experiment_id: Option<String>,
    run_id: Option<String>,
    /// Where the run's artifacts are uploaded (under `wire::ARTIFACTS_API`),
    /// or why they cannot be.
    artifact_root: Option<Result<String, String>>,
    uploaded_files: u64,
    unsent_files: u64,
    /// Why the last artifact given up could not be uploaded.
    artifact_error: Option<String>,
    queue: VecDeque<Item>,
    queued_metrics: usize,
    sent_metrics: u64,
    unsent_metrics: u64,
    /// After a batch of merged items was refused: send items one by one.
    no_merge: bool,
    /// A create was sent again after one whose reply was lost: the server
    /// may hold a duplicate, which `finish` deletes.
    recreated: bool,
    failures: u32,
    retry_at: u64,
    last_error: Option<String>,
    notes: Vec<Note>,
    warned: BTreeSet<String>,
}

impl Engine {
    pub fn new(plan: Plan) -> Engine {
        let stage = match (&plan.run_id, &plan.experiment_name) {
            _ if plan.parent_run_id.is_some() => Stage::GetParent,
            (Some(_), _) => Stage::GetRun,
            (None, Some(_)) => Stage::FindExperiment,
            // HF with no MLFLOW_EXPERIMENT_NAME: the Default experiment.
            (None, None) => Stage::CreateRun {
                experiment_id: "0".into(),
                start_time: None,
                lost_at: None,
            },
        };
        Engine {
            plan,
            stage,
            experiment_id: None,
            run_id: None,
            artifact_root: None,
            uploaded_files: 0,
            unsent_files: 0,
            artifact_error: None,
            queue: VecDeque::new(),
            queued_metrics: 0,
            sent_metrics: 0,
            unsent_metrics: 0,
            no_merge: false,
            recreated: false,
            failures: 0,
            retry_at: 0,
            last_error: None,
            notes: Vec::new(),
            warned: BTreeSet::new(),
        }
    }

    /// The messages since the last call.
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    /// The run's id once it exists.
    #[cfg(test)]
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// Metrics sent, and metrics given up so far.
    #[cfg(test)]
    pub fn counts(&self) -> (u64, u64) {
        (self.sent_metrics, self.unsent_metrics)
    }

    /// Artifact files uploaded, and given up so far.
    #[cfg(test)]
    pub fn file_counts(&self) -> (u64, u64) {
        (self.uploaded_files, self.unsent_files)
    }

    /// Sets the run's artifact URI (as a server without a proxy gives it).
    #[cfg(test)]
    pub fn force_artifact_uri(&mut self, uri: &str) {
        self.artifact_root = Some(wire::artifact_root(uri));
    }

    /// Queues files to upload: (the plugin's path, the artifact path).
    pub fn upload(&mut self, files: Vec<(String, String)>) {
        if self.stage == Stage::Failed {
            self.unsent_files += files.len() as u64;
            return;
        }
        self.queue.extend(
            files
                .into_iter()
                .map(|(file, path)| Item::Artifact { file, path }),
        );
    }

    /// Queues the metrics of one log entry (one `log-batch` unless it is huge).
    pub fn log(&mut self, metrics: Vec<Metric>) {
        if metrics.is_empty() {
            return;
        }
        if self.stage == Stage::Failed {
            self.unsent_metrics += metrics.len() as u64;
            return;
        }
        self.queued_metrics += metrics.len();
        for chunk in wire::chunks(
            metrics,
            wire::MAX_METRICS_PER_BATCH,
            wire::MAX_BODY_BYTES,
            wire::metric_size,
        ) {
            self.queue.push_back(Item::Metrics(chunk));
        }
        while self.queued_metrics > MAX_QUEUED_METRICS {
            let Some(pos) = self
                .queue
                .iter()
                .position(|i| matches!(i, Item::Metrics(_)))
            else {
                break;
            };
            if let Some(Item::Metrics(old)) = self.queue.remove(pos) {
                self.queued_metrics -= old.len();
                self.unsent_metrics += old.len() as u64;
            }
            self.warn_once(
                "queue-full",
                format!("more than {MAX_QUEUED_METRICS} metrics are waiting for {}; the oldest are given up", self.plan.uri),
            );
        }
    }

    /// Counts metrics that cannot be sent at all (say, a key too long for
    /// MLflow), with the reason.
    pub fn not_sendable(&mut self, count: usize, why: String) {
        self.unsent_metrics += count as u64;
        self.warn(why.clone());
        self.last_error = Some(why);
    }

    /// Sends for at most `budget_ms`: setup first, then the queue. Waits
    /// out the backoff after a failure unless `finishing`, when it retries
    /// [`FINISH_RETRIES`] times instead.
    pub fn pump(&mut self, net: &mut dyn Net, budget_ms: u64, finishing: bool) {
        let start = net.now_ms();
        let mut retries = 0;
        loop {
            let now = net.now_ms();
            let left = budget_ms.saturating_sub(now.saturating_sub(start));
            if self.stage == Stage::Failed
                || left < MIN_REQUEST_MS
                || (!finishing && now < self.retry_at)
            {
                return;
            }
            let Some((request, step)) = self.next_request(now, net) else {
                return;
            };
            match self.send(net, &request, step, left) {
                Outcome::Done => {}
                Outcome::Stop => return,
                Outcome::Retry if finishing && retries < FINISH_RETRIES => {
                    let wait = 200 << retries;
                    retries += 1;
                    let used = net.now_ms().saturating_sub(start);
                    if used + wait + MIN_REQUEST_MS > budget_ms {
                        return;
                    }
                    net.sleep_ms(wait);
                }
                Outcome::Retry => return,
                Outcome::Wait(ms) if finishing => {
                    let used = net.now_ms().saturating_sub(start);
                    if used + ms + MIN_REQUEST_MS > budget_ms {
                        return;
                    }
                    net.sleep_ms(ms);
                }
                Outcome::Wait(ms) => {
                    self.retry_at = net.now_ms().saturating_add(ms);
                    return;
                }
            }
        }
    }

    /// Flushes what is queued, deletes a duplicate a retried create left,
    /// ends the run with `status` (FINISHED, FAILED or KILLED) and reports
    /// what was sent and what could not be.
    pub fn finish(&mut self, net: &mut dyn Net, status: &str, budget_ms: u64) {
        let start = net.now_ms();
        self.pump(net, budget_ms.saturating_sub(500).max(MIN_REQUEST_MS), true);
        if self.recreated {
            let left = budget_ms.saturating_sub(net.now_ms().saturating_sub(start));
            self.delete_duplicates(net, left / 2);
        }
        if let (Some(run_id), Stage::Ready, false) =
            (self.run_id.clone(), &self.stage, self.plan.job_run)
        {
            let left = budget_ms.saturating_sub(net.now_ms().saturating_sub(start));
            let request = wire::update_run(&run_id, status, Some(net.now_ms()), None);
            match net.send(&request, left.max(MIN_REQUEST_MS)) {
                Ok(r) if (200..300).contains(&r.status) => {}
                Ok(r) => self.warn(format!(
                    "could not end run {run_id} as {status}: {}",
                    ApiError::parse(r.status, &r.body)
                )),
                Err(e) => self.warn(format!("could not end run {run_id} as {status}: {e}")),
            }
        }
        self.drop_queue();
        if let Some(run_id) = &self.run_id {
            let experiment = self.experiment_id.as_deref().unwrap_or("?");
            let files = match self.uploaded_files {
                0 => String::new(),
                n => format!(", {n} artifact files uploaded"),
            };
            let ended = match self.plan.job_run {
                true => "left RUNNING for its job".to_string(),
                false => format!("ended {status}"),
            };
            // A server's page, or the local store's folder.
            let see = match self.plan.uri.starts_with("http") {
                true => format!("{}/#/experiments/{experiment}/runs/{run_id}", self.plan.uri),
                false => format!("{}/{experiment}/{run_id}", self.plan.uri),
            };
            self.notes.push(Note::Info(format!(
                "run {run_id}: {} metrics logged{files}, {ended}; see {see}",
                self.sent_metrics
            )));
        }
        let why = self.last_error.as_deref().unwrap_or("unknown error");
        if self.unsent_metrics > 0 {
            self.notes.push(Note::Info(format!(
                "{} metrics could not be sent to {}: {why}",
                self.unsent_metrics, self.plan.uri
            )));
        }
        if self.unsent_files > 0 {
            self.notes.push(Note::Info(format!(
                "{} artifact files could not be uploaded to {}: {}",
                self.unsent_files,
                self.plan.uri,
                self.artifact_error.as_deref().unwrap_or(why)
            )));
        }
    }

    /// Sends one request and moves on according to how it went.
    fn send(&mut self, net: &mut dyn Net, request: &Request, step: Step, left: u64) -> Outcome {
        let result = net.send(request, left);
        let now = net.now_ms();
        match result {
            Ok(r) if (200..300).contains(&r.status) => {
                if self.failures > 0 {
                    self.failures = 0;
                    self.warned.remove("unreachable");
                    self.notes
                        .push(Note::Info(format!("{} answers again", self.plan.uri)));
                }
                match self.succeeded(step, &r.body, now) {
                    Ok(outcome) => outcome,
                    Err(why) => self.fail(format!(
                        "{} answered {} {} with {why}; is MLFLOW_TRACKING_URI the address of an MLflow tracking server?",
                        self.plan.uri, request.method, request.path
                    )),
                }
            }
            Ok(r) => {
                let error = ApiError::parse(r.status, &r.body);
                if error.is_transient() {
                    self.transient(error.to_string(), now)
                } else {
                    self.rejected(step, error)
                }
            }
            Err(NetError::Denied) => self.fail(format!(
                "HTTP to {origin} is not granted to this plugin; add plugins.mlflow.allow_http = [\"{origin}\"] to the run config (--report_to mlflow grants it by itself)",
                origin = origin(&self.plan.uri)
            )),
            Err(e) if e.may_have_arrived() => {
                // The server may have done it: look before doing it again.
                match &mut self.stage {
                    Stage::CreateRun { lost_at, .. } if step == Step::CreateRun => {
                        lost_at.get_or_insert(now);
                    }
                    Stage::CreateExperiment => self.stage = Stage::FindExperiment,
                    _ => {}
                }
                self.transient(e.to_string(), now)
            }
            Err(e) => self.transient(e.to_string(), now),
        }
    }

    /// A failure that may pass: wait and try again.
    fn transient(&mut self, why: String, now: u64) -> Outcome {
        self.failures += 1;
        let wait = (FIRST_BACKOFF_MS << (self.failures - 1).min(16)).min(MAX_BACKOFF_MS);
        self.retry_at = now.saturating_add(wait);
        let message = format!(
            "cannot reach {} ({why}); metrics are kept and sent when it answers",
            self.plan.uri
        );
        self.last_error = Some(why);
        self.warn_once("unreachable", message);
        Outcome::Retry
    }

    /// Counts what is still queued as not sent, and empties the queue.
    fn drop_queue(&mut self) {
        for item in self.queue.drain(..) {
            match item {
                Item::Metrics(m) => self.unsent_metrics += m.len() as u64,
                Item::Artifact { .. } => self.unsent_files += 1,
                Item::Params(_) | Item::Tags(_) => {}
            }
        }
        self.queued_metrics = 0;
    }

    /// A failure retrying cannot fix: stop sending, count what is queued.
    fn fail(&mut self, why: String) -> Outcome {
        self.stage = Stage::Failed;
        self.drop_queue();
        self.warn(format!("{why}; nothing more is sent to MLflow"));
        self.last_error = Some(why);
        Outcome::Stop
    }

    fn warn(&mut self, text: String) {
        if self.warned.insert(text.clone()) {
            self.notes.push(Note::Warn(text));
        }
    }

    fn warn_once(&mut self, key: &str, text: String) {
        if self.warned.insert(key.to_string()) {
            self.notes.push(Note::Warn(text));
        }
    }
}
