//! mlflow: HF's `report_to="mlflow"` integration (`MLflowCallback`,
//! transformers 5.24) as a trainbox plugin. The work is in
//! `trainbox-mlflow-core`, which the dagshub and azure_ml plugins share.

trainbox_sdk::export_plugin!(trainbox_mlflow_core::Plugin<trainbox_mlflow_core::Mlflow>);
