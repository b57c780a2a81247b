//! dagshub: HF's `report_to="dagshub"` integration (`DagsHubCallback`, an
//! `MLflowCallback` for `https://dagshub.com/<owner>/<repo>.mlflow`) as a
//! trainbox plugin. The work is in `trainbox-mlflow-core`.

trainbox_sdk::export_plugin!(trainbox_mlflow_core::Plugin<trainbox_mlflow_core::DagsHub>);
