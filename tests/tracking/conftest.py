"""Params of a tiny but real β-VAE pipeline run (the run itself is the session fixture
``tiny_vae_run`` in tests/conftest.py, shared by the tracking and explorer tests)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import empty_mlflow_store

REPO = Path(__file__).resolve().parents[2]
N_RECORDS = 60


def tiny_params(work: Path, mirror: Path) -> Path:
    """params.yaml for a 2-epoch run on the first PTB-XL records (NORM vs rest: enough positives),
    2 replicates (outer folds)."""
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["data"].update(mirror=str(mirror), raw_dir=str(work / "data/raw"), databases=["ptb-xl"],
                     subset=N_RECORDS)  # fmt: skip
    p["preprocess"].update(out_dir=str(work / "data/beats"), n_jobs=2)
    p["split"].update(out_dir=str(work / "data/splits"), task_name="norm",
                      positive_superclasses=["NORM"], outer_folds=2)  # fmt: skip
    v = p["vae"]
    v.update(datasets=["ptbxl"], models_dir=str(work / "models"),
             checkpoint_dir=str(work / "checkpoints"), threads=1, patience=5)
    v["pretrain"]["max_epochs"] = 2
    v["finetune_head"]["max_epochs"] = 1
    v["finetune"]["max_epochs"] = 2
    v["pretrain_models"] = {"L2": {"latent_dim": 2}, "L4": {"latent_dim": 4}}
    v["finetune_models"] = {"L2_specific": {"base": "L2", "latent_pred": 2},
                            "L4_split": {"base": "L4", "latent_pred": 2}}  # fmt: skip
    p["tracking"].update(tracking_uri=f"sqlite:///{work / 'mlflow.db'}",
                         artifact_root=str(work / "mlartifacts"),
                         reports_dir=str(work / "reports"))  # fmt: skip
    empty_mlflow_store(work / "mlflow.db")
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path
