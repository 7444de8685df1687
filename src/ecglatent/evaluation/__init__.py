"""Feature evaluation: AUROC with CIs and the Hanley & McNeil test, record-level (clustered)
intervals and tests, replicate summaries, logistic probes, baselines,
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
from ecglatent.evaluation.clustered import (
    ClusteredAucDiff,
    ClusteredAuroc,
    PairedTest,
    auroc_difference,
    cluster_bootstrap_auroc,
    cluster_bootstrap_auroc_diff,
    obuchowski_auroc_diff,
    paired_replicate_test,
)
from ecglatent.evaluation.probes import (
    FeatureEvaluation,
    ProbeResult,
    evaluate_features,
    fit_logistic_probe,
    probe_latents,
)
from ecglatent.evaluation.report import (
    Comparison,
    EvidenceScope,
    ResultRow,
    evidence_markdown,
    row_metrics,
    summarise_replicates,
    table1_markdown,
)

__all__ = [
    "AucComparison",
    "AurocCI",
    "ClusteredAucDiff",
    "ClusteredAuroc",
    "Comparison",
    "EvidenceScope",
    "PairedTest",
    "auroc_difference",
    "cluster_bootstrap_auroc",
    "cluster_bootstrap_auroc_diff",
    "evidence_markdown",
    "obuchowski_auroc_diff",
    "paired_replicate_test",
    "probe_latents",
    "row_metrics",
    "summarise_replicates",
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
