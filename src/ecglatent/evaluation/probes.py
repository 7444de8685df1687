"""Logistic-regression probes on extracted features (paper §2.3, §2.5).

The probe is a fitted sklearn ``Pipeline(StandardScaler, LogisticRegression)`` so it can be
pickled and served next to the encoder. C is chosen by stratified inner cross-validation on
the training set only, scored by AUROC; the test set is touched once, for the report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ecglatent.evaluation.auroc import AurocCI, auroc_ci

__all__ = [
    "DEFAULT_CS",
    "FeatureEvaluation",
    "Penalty",
    "ProbeResult",
    "evaluate_features",
    "fit_logistic_probe",
    "probe_latents",
]

Penalty = Literal["l1", "l2"]

# Half-decade steps over the same 1e-4..1e4 span as LogisticRegressionCV's default grid.
DEFAULT_CS: tuple[float, ...] = tuple(float(c) for c in np.logspace(-4, 4, 17))

_SKLEARN_VERSION = tuple(int(p) for p in re.findall(r"\d+", sklearn.__version__)[:2])


def _penalty_kwargs(penalty: str) -> dict[str, object]:
    # sklearn 1.8 deprecated `penalty` in favour of `l1_ratio`; before 1.8, `l1_ratio` is
    # ignored unless penalty="elasticnet", so passing the wrong one silently fits L2.
    if _SKLEARN_VERSION >= (1, 8):
        return {"l1_ratio": 1.0 if penalty == "l1" else 0.0}
    return {"penalty": penalty}


@dataclass
class ProbeResult:
    """One fitted probe and its test-set performance.

    ``test_scores`` are P(y=1) from the class-balanced model and ``test_logits`` the same on
    the log-odds scale (better suited to the Pearson correlation of
    :func:`~ecglatent.evaluation.auroc.compare_aucs_hanley_mcneil` than saturated
    probabilities; both rank the cases identically). ``f1_macro`` thresholds the scores at
    0.5 (the model's own decision rule). ``cv_auroc`` is the mean inner-CV AUROC at the
    chosen ``C`` and is what model selection may use; ``auroc`` is the test AUROC with its
    Hanley & McNeil 95% CI and must not be used to select anything.
    """

    penalty: str
    C: float
    cv_auroc: float
    test_scores: np.ndarray
    test_logits: np.ndarray
    auroc: AurocCI
    f1_macro: float
    pipeline: Pipeline
    seed: int

    @property
    def coef(self) -> np.ndarray:
        """Coefficients on the standardised features, shape (n_features,)."""
        return np.asarray(self.pipeline[-1].coef_).ravel()


@dataclass
class FeatureEvaluation:
    """Both probes on one feature set, and which one inner CV prefers."""

    l1: ProbeResult
    l2: ProbeResult
    best_penalty: str

    @property
    def best(self) -> ProbeResult:
        """The probe with the higher inner-CV AUROC (ties go to l2)."""
        return self.l1 if self.best_penalty == "l1" else self.l2

    @property
    def validation_auroc(self) -> float:
        """The chosen probe's mean inner-CV AUROC on the training rows (patient-grouped folds
        when groups were given): the score that may select models, C, penalty or aliases. It
        is computed before the test rows are looked at and does not depend on them."""
        return self.best.cv_auroc


def probe_latents(mu: np.ndarray, latent_pred: int | None) -> np.ndarray:
    """The latent means a probe reads: the first ``latent_pred`` for split-task models.

    The paper's split-task row "2 (10)" probes the ``L_pred`` latents that were trained for
    prediction (plus RR), not all ``L``; task-naive (``None``/0) and task-specific
    (``latent_pred == L``) models are probed on every latent.
    """
    mu = np.asarray(mu)
    if mu.ndim != 2:
        raise ValueError(f"latent means must be 2-D (n, L), got shape {mu.shape}")
    if not latent_pred:
        return mu
    if not 1 <= latent_pred <= mu.shape[1]:
        raise ValueError(f"latent_pred={latent_pred} outside 1..{mu.shape[1]} latents")
    return mu[:, :latent_pred]


def _check_xy(X: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim == 1:
        Xa = Xa[:, None]
    if Xa.ndim != 2:
        raise ValueError(f"X_{name} must be 2-D (n_samples, n_features), got shape {Xa.shape}")
    if not np.isfinite(Xa).all():
        raise ValueError(f"X_{name} contains NaN or infinite values")
    ya = np.asarray(y).ravel()
    if ya.shape[0] != Xa.shape[0]:
        raise ValueError(f"X_{name} has {Xa.shape[0]} rows but y_{name} has {ya.shape[0]}")
    if not np.isin(np.unique(ya), [0, 1]).all():
        raise ValueError(f"y_{name} must hold only 0 and 1")
    return Xa, ya.astype(int)


def fit_logistic_probe(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    penalty: Penalty = "l2",
    seed: int = 0,
    Cs: Sequence[float] = DEFAULT_CS,
    n_folds: int = 5,
    groups: np.ndarray | None = None,
    max_iter: int = 1000,
) -> ProbeResult:
    """Standardise, fit a class-balanced L1/L2 logistic regression with C from inner CV, score test.

    Inner CV is ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)``, or
    ``StratifiedGroupKFold`` when ``groups`` (e.g. patient ids of the training rows) is given,
    so that ECGs of one patient never sit on both sides of an inner split. The scaler is part
    of the cross-validated pipeline, so inner folds never see their validation statistics.
    Solver liblinear (supports both penalties, deterministic given ``seed``).
    """
    if penalty not in ("l1", "l2"):
        raise ValueError(f"penalty must be 'l1' or 'l2', got {penalty!r}")
    Xtr, ytr = _check_xy(X_train, y_train, "train")
    Xte, yte = _check_xy(X_test, y_test, "test")
    if Xtr.shape[1] != Xte.shape[1]:
        raise ValueError(f"train has {Xtr.shape[1]} features, test has {Xte.shape[1]}")
    minority = int(min(ytr.sum(), ytr.size - ytr.sum()))
    if minority < n_folds:
        raise ValueError(
            f"training set has {minority} samples of its minority class; need >= n_folds={n_folds}"
        )
    if len(Cs) == 0:
        raise ValueError("Cs must hold at least one value")

    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "logreg",
                LogisticRegression(
                    solver="liblinear",
                    class_weight="balanced",
                    random_state=seed,
                    max_iter=max_iter,
                    **_penalty_kwargs(penalty),
                ),
            ),
        ]
    )
    if groups is None:
        cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    else:
        groups = np.asarray(groups)
        if groups.shape[0] != Xtr.shape[0]:
            raise ValueError(f"groups has {groups.shape[0]} entries, X_train {Xtr.shape[0]} rows")
        cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    search = GridSearchCV(
        pipe,
        {"logreg__C": [float(c) for c in Cs]},
        scoring="roc_auc",
        cv=cv,
        refit=True,
        n_jobs=1,
        error_score="raise",
    )
    search.fit(Xtr, ytr, groups=groups)
    best: Pipeline = search.best_estimator_

    scores = best.predict_proba(Xte)[:, list(best.classes_).index(1)]
    # predict() is decision_function > 0, i.e. P > 0.5 of the balanced model.
    f1 = float(f1_score(yte, best.predict(Xte), average="macro", zero_division=0))
    return ProbeResult(
        penalty=penalty,
        C=float(search.best_params_["logreg__C"]),
        cv_auroc=float(search.best_score_),
        test_scores=scores,
        test_logits=np.asarray(best.decision_function(Xte), dtype=np.float64),
        auroc=auroc_ci(yte, scores),
        f1_macro=f1,
        pipeline=best,
        seed=seed,
    )


def evaluate_features(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    seed: int = 0,
    Cs: Sequence[float] = DEFAULT_CS,
    n_folds: int = 5,
    groups: np.ndarray | None = None,
) -> FeatureEvaluation:
    """Fit the L1 and the L2 probe and pick the better by inner-CV AUROC, never by test.

    Ties go to L2, whose solution is unique (L1 solutions need not be).
    """
    kwargs = {"seed": seed, "Cs": Cs, "n_folds": n_folds, "groups": groups}
    l1 = fit_logistic_probe(X_train, y_train, X_test, y_test, penalty="l1", **kwargs)
    l2 = fit_logistic_probe(X_train, y_train, X_test, y_test, penalty="l2", **kwargs)
    return FeatureEvaluation(l1=l1, l2=l2, best_penalty="l1" if l1.cv_auroc > l2.cv_auroc else "l2")
