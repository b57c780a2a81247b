//! `wandb_internal.ArtifactRecord` and its manifest, as wandb 0.31's
//! `InterfaceBase._make_artifact` fills them for `run.log_artifact` (field
//! numbers from `wandb_internal.proto`; only the fields it sets for a new
//! local artifact). `proto::artifact` wraps one in a `Record`.

use prost::Message;

/// `ArtifactRecord`.
#[derive(Clone, PartialEq, Message)]
pub struct ArtifactRecord {
    #[prost(string, tag = "1")]
    pub run_id: String,
    #[prost(string, tag = "2")]
    pub project: String,
    #[prost(string, tag = "3")]
    pub entity: String,
    #[prost(string, tag = "4")]
    pub r#type: String,
    #[prost(string, tag = "5")]
    pub name: String,
    /// The manifest's digest (hex MD5).
    #[prost(string, tag = "6")]
    pub digest: String,
    /// JSON text of the metadata dict.
    #[prost(string, tag = "8")]
    pub metadata: String,
    #[prost(string, repeated, tag = "11")]
    pub aliases: Vec<String>,
    #[prost(message, optional, tag = "12")]
    pub manifest: Option<Manifest>,
    #[prost(bool, tag = "14")]
    pub finalize: bool,
    #[prost(string, tag = "15")]
    pub client_id: String,
    #[prost(string, tag = "16")]
    pub sequence_client_id: String,
    /// `"MANIFEST_MD5"`.
    #[prost(string, tag = "20")]
    pub digest_algorithm: String,
}

/// `ArtifactManifest`.
#[derive(Clone, PartialEq, Message)]
pub struct Manifest {
    #[prost(int32, tag = "1")]
    pub version: i32,
    #[prost(string, tag = "2")]
    pub storage_policy: String,
    #[prost(message, repeated, tag = "3")]
    pub storage_policy_config: Vec<PolicyItem>,
    #[prost(message, repeated, tag = "4")]
    pub contents: Vec<ManifestEntry>,
}

/// `StoragePolicyConfigItem`.
#[derive(Clone, PartialEq, Message)]
pub struct PolicyItem {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value_json: String,
}

/// `ArtifactManifestEntry`.
#[derive(Clone, PartialEq, Message)]
pub struct ManifestEntry {
    /// The file's path inside the artifact (`/`-separated).
    #[prost(string, tag = "1")]
    pub path: String,
    /// base64 of the file's MD5.
    #[prost(string, tag = "2")]
    pub digest: String,
    /// Bytes (left out when 0, as wandb does).
    #[prost(int64, tag = "4")]
    pub size: i64,
    /// The staged copy `wandb sync` uploads, a host path.
    #[prost(string, tag = "6")]
    pub local_path: String,
    /// Set for files written with `artifact.new_file`.
    #[prost(bool, tag = "8")]
    pub skip_cache: bool,
}
