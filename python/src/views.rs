//! The plugins' views over HF's objects, read only when a plugin asks:
//! parameter and gradient statistics through a Python object the
//! `trainbox.hf` side makes over the model (`_ModelStats`), learning rates
//! from HF's optimizer, the gradient norm from the object `trainbox.hf`
//! keeps the norm HF's Trainer clipped with in (`_GradNorm`).

use pyo3::intern;
use pyo3::prelude::*;
use trainbox_sandbox::view::{GradNorm, Histogram, LearningRates, Parameters, TensorStats};

/// `Parameters` over a Python object with `names()`, `count()`,
/// `stats(name, grad)` and `histogram(name, grad, bins)`. A Python error
/// reads as "no such parameter" (the plugin sees `none`), and is printed.
pub struct PyParameters(pub Py<PyAny>);

fn report(py: Python<'_>, e: PyErr) {
    e.print(py);
}

impl Parameters for PyParameters {
    fn names(&self) -> Vec<String> {
        Python::attach(|py| {
            let r = self.0.bind(py).call_method0(intern!(py, "names"));
            r.and_then(|v| v.extract()).unwrap_or_else(|e| {
                report(py, e);
                Vec::new()
            })
        })
    }

    fn count(&self) -> u64 {
        Python::attach(|py| {
            let r = self.0.bind(py).call_method0(intern!(py, "count"));
            r.and_then(|v| v.extract()).unwrap_or_else(|e| {
                report(py, e);
                0
            })
        })
    }

    fn stats(&self, name: &str, grad: bool) -> Option<TensorStats> {
        Python::attach(|py| {
            let r = self
                .0
                .bind(py)
                .call_method1(intern!(py, "stats"), (name, grad));
            let t: Option<(u64, f64, f64, f64, f64, f64, u64)> =
                r.and_then(|v| v.extract()).unwrap_or_else(|e| {
                    report(py, e);
                    None
                });
            t.map(
                |(numel, norm, mean, std, min, max, nonfinite)| TensorStats {
                    numel,
                    norm,
                    mean,
                    std,
                    min,
                    max,
                    nonfinite,
                },
            )
        })
    }

    fn histogram(&self, name: &str, grad: bool, bins: u32) -> Option<Histogram> {
        Python::attach(|py| {
            let r = self
                .0
                .bind(py)
                .call_method1(intern!(py, "histogram"), (name, grad, bins));
            let t: Option<(f64, f64, Vec<u64>)> = r.and_then(|v| v.extract()).unwrap_or_else(|e| {
                report(py, e);
                None
            });
            t.map(|(min, max, counts)| Histogram { min, max, counts })
        })
    }
}

/// The learning rate of each of HF's optimizer's `param_groups`.
pub struct PyLearningRates(pub Py<PyAny>);

impl LearningRates for PyLearningRates {
    fn learning_rates(&self) -> Vec<f64> {
        Python::attach(|py| {
            let groups = || -> PyResult<Vec<f64>> {
                let groups = self.0.bind(py).getattr(intern!(py, "param_groups"))?;
                let mut out = Vec::new();
                for g in groups.try_iter()? {
                    out.push(g?.get_item(intern!(py, "lr"))?.extract()?);
                }
                Ok(out)
            };
            groups().unwrap_or_else(|e| {
                report(py, e);
                Vec::new()
            })
        })
    }
}

/// The gradient norm through a Python object's `value()` (a float or None),
/// read only when a plugin asks: HF's norm stays a tensor until then.
pub struct PyGradNorm(pub Py<PyAny>);

impl GradNorm for PyGradNorm {
    fn grad_norm(&self) -> Option<f64> {
        Python::attach(|py| {
            let r = self.0.bind(py).call_method0(intern!(py, "value"));
            r.and_then(|v| v.extract()).unwrap_or_else(|e| {
                report(py, e);
                None
            })
        })
    }
}
