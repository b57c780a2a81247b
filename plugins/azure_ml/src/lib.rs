//! azure_ml: HF's `report_to="azure_ml"` integration (`AzureMLCallback`)
//! as a trainbox plugin, through the MLflow REST API of an `azureml://`
//! workspace URI. The work is in `trainbox-mlflow-core`.

trainbox_sdk::export_plugin!(trainbox_mlflow_core::Plugin<trainbox_mlflow_core::AzureMl>);
