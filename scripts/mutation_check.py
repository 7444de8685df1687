"""Mutation check: break the science on purpose and make sure some test notices.

Each mutation below is one deliberate bug: a file under ``src/ecglatent``, an exact snippet that
must occur exactly once in it, its replacement, and the tests that should fail. For each, the
whole ``src/`` is copied to a temporary folder, the snippet is replaced there, and the listed
tests run in a fresh ``pytest -x -q`` with ``PYTHONPATH`` pointing at the mutated copy. A mutation
is *caught* when the tests fail (and not by an import error or a timeout, which would say nothing
about the science). Results go to ``benchmarks/results/mutation_check.json``; the exit status is
non-zero when any mutation survives or a snippet no longer matches the code.

    python scripts/mutation_check.py            # all mutations
    python scripts/mutation_check.py --list     # names only
    python scripts/mutation_check.py --only gamma_ignored_in_finetune --only hm1983_table_cell

When the code changes under a snippet, the script stops that mutation with a message naming it:
update its ``old`` text in MUTATIONS (keep snippets short, and keep the bug the same).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "mutation_check.json"
TIMEOUT_S = 900


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to src/ecglatent
    old: str
    new: str
    tests: tuple[str, ...]
    why: str


T_TRAINER = "tests/training/test_trainer.py"
T_SIMSIAM = "tests/training/test_simsiam.py"
T_LOSSES = "tests/training/test_losses.py"
T_AUROC = "tests/evaluation/test_auroc.py"
T_TABLE = "tests/evaluation/test_auroc_table.py"
T_BEAT_SERVE = "tests/tracking/test_beat_serving_windows.py"
T_GOLDEN = "tests/tracking/test_vae_golden.py"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "vae_best_epoch_restore_removed",
        "training/trainer.py",
        "    model.load_state_dict(best_state)\n    model.freeze_autoencoder(False)",
        "    pass\n    model.freeze_autoencoder(False)",
        (f"{T_TRAINER}::test_the_best_epoch_weights_are_kept_not_the_last",),
        "β-VAE trainer returns the last epoch's weights instead of the best one's",
    ),
    Mutation(
        "simsiam_downstream_best_epoch_restore_removed",
        "training/simsiam.py",
        "        model.load_state_dict(best_state)\n        model.eval()",
        "        pass\n        model.eval()",
        (f"{T_SIMSIAM}::test_returned_model_is_the_best_validation_epoch_and_early_stopping",),
        "SiliconNet downstream training keeps the last epoch, not the best-F1 one",
    ),
    Mutation(
        "simsiam_pretrain_best_epoch_restore_removed",
        "training/simsiam.py",
        "        model.load_state_dict(best_state)\n        return result",
        "        pass\n        return result",
        (f"{T_SIMSIAM}::test_pretraining_keeps_the_best_epoch_weights",),
        "SimSiam pretraining keeps the last epoch, not the best-validation one",
    ),
    Mutation(
        "gamma_ignored_in_finetune",
        "training/trainer.py",
        "beta=spec.beta, gamma=spec.gamma if use_y else 0.0)  # fmt: skip\n            opt.",
        "beta=spec.beta, gamma=0.0)  # fmt: skip\n            opt.",
        (f"{T_TRAINER}::test_beta_and_gamma_reach_the_loss_that_is_minimised",),
        "the γ·BCE term never reaches the loss that is back-propagated",
    ),
    Mutation(
        "gamma_not_from_params",
        "pipeline/vae_train.py",
        "beta=beta, gamma=v.gamma,",
        "beta=beta, gamma=500.0,",
        ("tests/pipeline/test_vae_train.py",),
        "vae.gamma in params.yaml does not reach the PhaseSpec",
    ),
    Mutation(
        "beta_not_passed_by_trainer",
        "training/trainer.py",
        "train.y[b] if use_y else None,\n                                 beta=spec.beta,",
        "train.y[b] if use_y else None,\n                                 beta=1.0,",
        (f"{T_TRAINER}::test_beta_and_gamma_reach_the_loss_that_is_minimised",),
        "the trainer minimises recon + 1·KL whatever the phase's β",
    ),
    Mutation(
        "beta_not_in_total_loss",
        "training/losses.py",
        "total = recon + beta * kl + gamma * bce",
        "total = recon + kl + gamma * bce",
        (f"{T_LOSSES}::test_total_is_recon_plus_beta_kl_plus_gamma_bce",),
        "β is accepted but not applied to the KL term",
    ),
    Mutation(
        "kl_sign_flipped",
        "training/losses.py",
        "per_dim = -0.5 * (1.0 + out.logvar",
        "per_dim = 0.5 * (1.0 + out.logvar",
        (T_LOSSES,),
        "KL term with the wrong sign (rewards moving away from the prior)",
    ),
    Mutation(
        "kl_term_dropped",
        "training/losses.py",
        "total = recon + beta * kl + gamma * bce",
        "total = recon + gamma * bce",
        (f"{T_LOSSES}::test_total_is_recon_plus_beta_kl_plus_gamma_bce",),
        "no KL term in the total: a plain autoencoder",
    ),
    Mutation(
        "balanced_sampling_off",
        "training/trainer.py",
        "    if spec.balanced:\n",
        "    if False:\n",
        (f"{T_TRAINER}::test_balanced_sampling_draws_both_classes_equally",),
        "fine-tuning draws items as they come, not classes equally",
    ),
    Mutation(
        "lr_swapped_between_phases",
        "pipeline/vae_train.py",
        "return PhaseSpec(phase=phase, lr=ph.lr,",
        "return PhaseSpec(phase=phase, lr=v.pretrain.lr,",
        ("tests/pipeline/test_vae_train.py",),
        "every phase trains with the pretraining learning rate",
    ),
    Mutation(
        "epochs_not_from_phase",
        "pipeline/vae_train.py",
        "max_epochs=ph.max_epochs,",
        "max_epochs=v.finetune.max_epochs,",
        ("tests/pipeline/test_vae_train.py",),
        "every phase runs the fine-tune epoch count",
    ),
    Mutation(
        "lr_not_reaching_optimiser",
        "training/trainer.py",
        "opt = make_adamw(params, spec.lr, spec.weight_decay)",
        "opt = make_adamw(params, 1e-3, spec.weight_decay)",
        (f"{T_TRAINER}::test_learning_rate_and_epochs_reach_the_optimiser",),
        "the optimiser ignores the phase's lr",
    ),
    Mutation(
        "hm1983_table_cell_changed",
        "evaluation/auroc.py",
        "(0.27, 0.27, 0.27, 0.26, 0.26, 0.25,",
        "(0.27, 0.27, 0.28, 0.26, 0.26, 0.25,",
        (T_TABLE,),
        "one cell of Hanley & McNeil (1983) Table I off by 0.01",
    ),
    Mutation(
        "hm1983_r_ignored",
        "evaluation/auroc.py",
        "var = ci_a.se**2 + ci_b.se**2 - 2.0 * r * ci_a.se * ci_b.se",
        "var = ci_a.se**2 + ci_b.se**2",
        (T_TABLE,),
        "the correlated-AUROC test treats the two areas as independent",
    ),
    Mutation(
        "auroc_ci_wrong_n",
        "evaluation/auroc.py",
        "se = hanley_mcneil_se(auc, n_pos, n_neg)",
        "se = hanley_mcneil_se(auc, n_pos + n_neg, n_neg)",
        (T_AUROC,),
        "AUROC CI computed with the total count as the number of positives",
    ),
    Mutation(
        "hm1983_correlation_on_wrong_pair",
        "evaluation/auroc.py",
        "r_neg = _correlation(a[~y], b[~y], corr_method)",
        "r_neg = _correlation(a[~y], a[~y], corr_method)",
        (T_TABLE,),
        "the negatives' correlation computed between a model and itself",
    ),
    Mutation(
        "f1_on_wrong_class",
        "evaluation/beat_metrics.py",
        "f1 = 2 * tp / (2 * tp + fp + fn)",
        "f1 = 2 * tn / (2 * tn + fp + fn)",
        ("tests/evaluation/test_beat_metrics.py",),
        "beat F1 of the N class reported as F1 of V",
    ),
    Mutation(
        "probe_f1_not_macro",
        "evaluation/probes.py",
        'average="macro"',
        'average="binary"',
        ("tests/evaluation/test_probes.py",),
        "the probe's reported macro-F1 is the positive class's F1",
    ),
    Mutation(
        "probe_fitted_on_test_split",
        "evaluation/probes.py",
        "search.fit(Xtr, ytr, groups=groups)",
        "search.fit(Xte, yte, groups=None if groups is None else np.arange(len(yte)))",
        ("tests/evaluation/test_probes.py",),
        "the probe (and its C) is fitted on the test rows",
    ),
    Mutation(
        "split_ungrouped",
        "datasets/splits.py",
        "uniq, inverse = np.unique(groups, return_inverse=True)",
        "uniq, inverse = np.unique(np.arange(len(groups)), return_inverse=True)",
        ("tests/datasets/test_splits.py",),
        "records of one patient land on both sides of the split",
    ),
    Mutation(
        "siliconet_frozen_config_trains_embedding",
        "training/simsiam.py",
        "return BeatClassifier(embedding, n_classes).freeze_embedding(not cfg.train_embedding)",
        "return BeatClassifier(embedding, n_classes).freeze_embedding(False)",
        (f"{T_SIMSIAM}::test_frozen_configurations_leave_the_embedding_untouched",),
        "randfeatures/finetune train the embedding they say is frozen",
    ),
    Mutation(
        "siliconet_pretrained_config_not_initialised",
        "training/simsiam.py",
        "embedding = copy.deepcopy(pretrained_embedding)",
        "embedding = SiliconEmbedding()",
        (f"{T_SIMSIAM}::test_each_configuration_starts_from_what_it_says",),
        "pretrained/finetune/2lr start from a random embedding",
    ),
    Mutation(
        "siliconet_2lr_single_rate",
        "training/simsiam.py",
        '"lr": cfg.lr_embedding,',
        '"lr": cfg.lr_classifier,',
        (f"{T_SIMSIAM}::test_trained_embedding_learns_with_its_own_learning_rate",),
        "2lr trains the embedding at the classifier's rate",
    ),
    Mutation(
        "p_value_on_wrong_pair",
        "pipeline/vae_evaluate.py",
        "base = params.vae.finetune_models[name].base",
        "base = next(iter(params.vae.pretrain_models))",
        (f"{T_GOLDEN}::test_reported_figures_equal_the_recomputed_ones",),
        "p_vs_naive compares a fine-tuned model with another model's task-naive base",
    ),
    Mutation(
        "reported_mse_not_in_mv",
        "pipeline/vae_evaluate.py",
        "mse, corr = reconstruction_metrics(data.x[test][rec_sub], mnorm.x_inverse(rec_te))",
        "mse, corr = reconstruction_metrics(mnorm.x(data.x[test][rec_sub]), rec_te)",
        (f"{T_GOLDEN}::test_reported_figures_equal_the_recomputed_ones",),
        "reconstruction MSE reported in normalised units instead of mV²",
    ),
    Mutation(
        "vae_serving_without_bandpass",
        "tracking/vae_pyfunc.py",
        "self.preprocess = PreprocessConfig(**pre)",
        'self.preprocess = PreprocessConfig(**{**pre, "bandpass_hz": (1e-3, 0.45 * float(bundle["target_fs"]))})',
        (f"{T_GOLDEN}::test_served_model_equals_the_evaluation",),
        "the served β-VAE skips the training band-pass",
    ),
    Mutation(
        "recon_not_divided_by_leads",
        "training/losses.py",
        "return (x_hat - x).pow(2).flatten(1).sum(dim=1).mean() / n_leads",
        "return (x_hat - x).pow(2).flatten(1).sum(dim=1).mean()",
        (f"{T_LOSSES}::test_reconstruction_of_12_leads_matches_the_reference_code",),
        "reconstruction summed over leads × time: β and γ lose their balance with it",
    ),
    Mutation(
        "champion_on_test_auroc",
        "tracking/registry.py",
        "score = ev.validation_auroc if validation_auroc is None else validation_auroc",
        "score = ev.best.auroc.auc if validation_auroc is None else validation_auroc",
        ("tests/tracking/test_registry.py::test_champion_decisions_do_not_depend_on_test_labels",),
        "the champion alias moves on the test AUROC (test-set selection)",
    ),
    Mutation(
        "split_task_probed_on_all_latents",
        "evaluation/probes.py",
        "    return mu[:, :latent_pred]",
        "    return mu",
        ("tests/evaluation/test_probes.py", f"{T_GOLDEN}::test_reported_figures_equal_the_recomputed_ones"),
        'split-task rows "2 (10)" probed on all L latents, not their L_pred',
    ),
    Mutation(
        "mitdb_difference_with_beats_as_units",
        "pipeline/vae_evaluate.py",
        "ev.best.test_logits, groups=units,",
        "ev.best.test_logits, groups=None,",
        ("tests/pipeline/test_vae_mitdb.py",),
        "naive vs specific on MIT-BIH tested with beats as independent units, not records",
    ),
    Mutation(
        "wilcoxon_pairs_seed_and_lead",
        "evaluation/beat_metrics.py",
        'return sub.pivot_table(index="seed", columns="config", values=metric, aggfunc="mean")',
        'return sub.pivot_table(index=["seed", "eval"], columns="config", values=metric)',
        ("tests/evaluation/test_beat_metrics.py", "tests/evaluation/test_significance_size.py"),
        "leads of one seed counted as independent pairs (pseudo-replication)",
    ),
    Mutation(
        "beat_serving_without_bandpass",
        "tracking/beat_pyfunc.py",
        "conditioned = condition(x[None, :], fs, self.fs, self.band)",
        "conditioned = condition(x[None, :], fs, self.fs, (1e-3, 0.45 * fs))",
        (T_BEAT_SERVE,),
        "the served beat classifier skips the training band-pass",
    ),
)


def _apply(src_copy: Path, m: Mutation) -> None:
    path = src_copy / "ecglatent" / m.file
    if not path.exists():
        raise SystemExit(f"mutation {m.name!r}: src/ecglatent/{m.file} no longer exists; "
                         f"update this mutation in {Path(__file__).name}")  # fmt: skip
    text = path.read_text()
    n = text.count(m.old)
    if n != 1:
        raise SystemExit(
            f"mutation {m.name!r}: its snippet occurs {n} times (must be exactly once) in "
            f"src/ecglatent/{m.file}; the code moved: update this mutation's `old` in "
            f"{Path(__file__).name}.\nsnippet:\n{m.old}"
        )
    path.write_text(text.replace(m.old, m.new))


def run_one(m: Mutation, timeout_s: int = TIMEOUT_S) -> dict:
    """Apply ``m`` to a copy of src/ and run its tests; returns the outcome row."""
    for t in m.tests:
        if not (REPO / t.split("::")[0]).exists():
            raise SystemExit(f"mutation {m.name!r}: test file {t} not found; update it")
    with tempfile.TemporaryDirectory(prefix=f"mut-{m.name}-") as tmp:
        src_copy = Path(tmp) / "src"
        shutil.copytree(REPO / "src", src_copy, ignore=shutil.ignore_patterns("__pycache__"))
        _apply(src_copy, m)
        env = dict(os.environ, PYTHONPATH=f"{src_copy}{os.pathsep}{REPO}",
                   PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
        # one process (-n 0): under pytest-xdist, -x ends a failing run as "interrupted" (2)
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider",
               "--no-header", *m.tests]  # fmt: skip
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=timeout_s)  # fmt: skip
            rc, out = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc, out = -1, f"timed out after {timeout_s} s\n{exc.stdout or ''}"
        seconds = time.perf_counter() - t0
    imported_mutant = "ImportError" not in out and "SyntaxError" not in out
    # pytest: 1 = some test failed; 2-5 = interrupted/usage/collection errors: not a catch
    caught = rc == 1 and imported_mutant and " failed" in out
    verdict = "caught" if caught else ("SURVIVED" if rc == 0 else f"ERROR (rc={rc})")
    tail = [ln for ln in out.splitlines() if ln.startswith(("FAILED", "ERROR", "E  "))][:3]
    return {"name": m.name, "file": f"src/ecglatent/{m.file}", "why": m.why,
            "tests": list(m.tests), "verdict": verdict, "caught": caught,
            "seconds": round(seconds, 1), "evidence": tail}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], help="run only this mutation (repeat)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON result file")
    ap.add_argument("--timeout", type=int, default=TIMEOUT_S, help="seconds per mutation")
    args = ap.parse_args(argv)
    names = [m.name for m in MUTATIONS]
    assert len(set(names)) == len(names), "duplicate mutation names"
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:48s} {m.file:28s} {m.why}")
        return 0
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        print(f"unknown mutation(s) {unknown}; --list shows them", file=sys.stderr)
        return 2
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    # Check every snippet first, so a stale pattern is reported before any test runs.
    with tempfile.TemporaryDirectory() as tmp:
        for m in chosen:
            probe = Path(tmp) / m.name
            (probe / "ecglatent" / m.file).parent.mkdir(parents=True)
            shutil.copy(REPO / "src" / "ecglatent" / m.file, probe / "ecglatent" / m.file)
            _apply(probe, m)
    rows = []
    t0 = time.perf_counter()
    for m in chosen:
        row = run_one(m, args.timeout)
        rows.append(row)
        print(f"{row['verdict']:14s} {row['seconds']:7.1f} s  {m.name}", flush=True)
    total = time.perf_counter() - t0
    print()
    print("| mutation | file | verdict | s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['file']} | {r['verdict']} | {r['seconds']} |")
    survived = [r["name"] for r in rows if not r["caught"]]
    print(f"\n{len(rows) - len(survived)}/{len(rows)} caught in {total:.0f} s"
          + (f"; NOT caught: {survived}" if survived else ""))  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"n": len(rows), "caught": len(rows) - len(survived),
                                    "survived": survived, "seconds": round(total, 1),
                                    "mutations": rows}, indent=2) + "\n")  # fmt: skip
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main())
