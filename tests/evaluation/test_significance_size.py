"""Size of the significance tests on simulated clustered data: at no true difference, p < 0.05
in about 5 % of simulations.

The data look like ours: many beats from few patients (records), with a patient effect that
every model shares, so beats of one patient are not independent. Two models (configurations)
with the same distribution are compared across training seeds, the unit of the SiliconNet
Wilcoxon test. A test that counted beats (or seed × lead pairs) as independent units would
reject far more often than 5 % here. The record-level (cluster bootstrap and Obuchowski)
AUROC tests of the β-VAE have their size test on simulated clustered nulls in
tests/evaluation/test_clustered.py.
"""

from __future__ import annotations

import numpy as np

from ecglatent.evaluation.beat_metrics import beat_metrics, wilcoxon_p, wilcoxon_pairwise

N_SIMS = 400


def simulate_clustered(
    rng: np.random.Generator, n_patients: int = 6, beats_per_patient: int = 150,
    patient_sd: float = 1.0, prevalence: float = 0.2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Labels, a per-beat shared score (class signal + patient effect) and patient ids."""
    groups = np.repeat(np.arange(n_patients), beats_per_patient)
    # each patient has its own share of positives (V beats are clustered in few patients)
    share = rng.beta(1.0, (1 - prevalence) / prevalence, n_patients)
    y = (rng.random(groups.size) < share[groups]).astype(int)
    shared = 1.2 * y + patient_sd * rng.standard_normal(n_patients)[groups]
    return y, shared, groups


def _seed_f1(rng, y, shared) -> float:
    """One training seed of one model: the shared score plus seed-specific noise, F1 of V."""
    score = shared + 0.7 * rng.standard_normal(y.size) + 0.3 * rng.standard_normal()
    return beat_metrics(y, (score > 0.9).astype(int)).f1


def test_seed_level_wilcoxon_has_its_nominal_size_on_clustered_data():
    rng = np.random.default_rng(2026)
    seeds = 10  # 5 seeds cannot reach p < 0.05 at all (smallest p is 0.0625)
    p = []
    for _ in range(N_SIMS):
        y, shared, _ = simulate_clustered(rng)
        a = [_seed_f1(rng, y, shared) for _ in range(seeds)]
        b = [_seed_f1(rng, y, shared) for _ in range(seeds)]
        p.append(wilcoxon_p(a, b))
    p = np.array(p)
    assert np.isfinite(p).all()
    size = float(np.mean(p < 0.05))
    assert 0.015 <= size <= 0.085, size  # binomial 95 % band around 0.05 for 400 draws


def test_leads_of_one_seed_do_not_shrink_the_p_value():
    """Two leads per seed are the same model on the same patients: pairing by seed and lead
    would double the pairs; pairing by seed gives the same size as one lead."""
    import pandas as pd

    rng = np.random.default_rng(7)
    rejections = 0
    for _ in range(200):
        y, shared, _ = simulate_clustered(rng)
        rows = []
        for config in ("a", "b"):
            for seed in range(6):
                base = shared + 0.3 * rng.standard_normal()
                for lead in ("V1", "V5"):
                    s = base + 0.5 * rng.standard_normal(y.size)
                    m = beat_metrics(y, (s > 0.9).astype(int))
                    rows.append({"config": config, "seed": seed, "eval": lead, "f1": m.f1})
        pw = wilcoxon_pairwise(pd.DataFrame(rows), ["V1", "V5"])
        rejections += pw.loc["a", "b"] < 0.05
    assert rejections / 200 <= 0.085, rejections
