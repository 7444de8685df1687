"""Feature evaluation: AUROC with CIs and the Hanley & McNeil test, logistic probes, baselines,
figures and result tables. numpy/scipy/sklearn/matplotlib only (no torch, MLflow, DVC, Optuna).
"""

from ecglatent.evaluation.auroc import (
    AucComparison,
    AurocCI,
    auroc_ci,
    compare_aucs_hanley_mcneil,
    hanley_mcneil_se,
    hm1983_area_correlation,
)
from ecglatent.evaluation.baselines import pca_features, reconstruction_metrics, sex_age_features
from ecglatent.evaluation.probes import (
    FeatureEvaluation,
    ProbeResult,
    evaluate_features,
    fit_logistic_probe,
)
from ecglatent.evaluation.report import ResultRow, table1_markdown

__all__ = [
    "AucComparison",
    "AurocCI",
    "FeatureEvaluation",
    "ProbeResult",
    "ResultRow",
    "auroc_ci",
    "compare_aucs_hanley_mcneil",
    "evaluate_features",
    "fit_logistic_probe",
    "hanley_mcneil_se",
    "hm1983_area_correlation",
    "pca_features",
    "reconstruction_metrics",
    "sex_age_features",
    "table1_markdown",
]
