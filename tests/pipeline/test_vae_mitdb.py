"""The β-VAE on MIT-BIH (V vs rest, single beats), end to end on a slice of the real records.

fetch → beats → split → pretrain → finetune → evaluate on the first 2 minutes of six DS1 and
two DS2 records, one thread, two replicates (seeds), then the reported test figures of each
replicate (MSE in mV, AUROC with its CI, the signed difference to the task-naive base with its
record-level bootstrap interval and p) recomputed here from the saved models, windows and
splits, with scikit-learn/numpy written in the test (see tests/tracking/test_vae_golden.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
import yaml
from sklearn.metrics import roc_auc_score

from ecglatent.cli import main
from tests.conftest import empty_mlflow_store, write_wfdb
from tests.tracking.test_vae_golden import _ci, best_probe, check_vs_naive, encode_saved

REPO = Path(__file__).resolve().parents[2]
DS1 = ("106", "119", "208", "203", "215", "116")
DS2 = ("228", "233")
SECONDS = 120
REPLICATES = 2


@pytest.fixture(scope="module")
def mitdb_run(mirror: Path, tmp_path_factory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("vae_mitdb")
    mit = work / "mirror" / "mitdb"
    for rec in DS1 + DS2:
        src = str(mirror / "mitdb" / rec)
        n = int(SECONDS * wfdb.rdheader(src).fs)
        r = wfdb.rdrecord(src, sampto=n)
        write_wfdb(mit, rec, r.p_signal.T, r.fs, r.sig_name)
        a = wfdb.rdann(src, "atr", sampto=n)
        wfdb.wrann(rec, "atr", a.sample, a.symbol, aux_note=a.aux_note, write_dir=str(mit))
    (mit / "RECORDS").write_text("\n".join(DS1 + DS2) + "\n")
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["data"].update(mirror=str(work / "mirror"), raw_dir=str(work / "data/raw"),
                     databases=["mitdb"], subset=0)  # fmt: skip
    p["preprocess"].update(out_dir=str(work / "data/beats"), n_jobs=1)
    p["split"].update(out_dir=str(work / "data/splits"), mitdb_replicates=REPLICATES)
    v = p["vae"]
    v.update(datasets=["mitdb"], models_dir=str(work / "models"),
             checkpoint_dir=str(work / "checkpoints"), threads=1, patience=5,
             max_train_items={"ptbxl": 0, "mitdb": 256}, max_val_items={"ptbxl": 0, "mitdb": 256})  # fmt: skip
    v["pretrain"]["max_epochs"] = 2
    v["finetune_head"]["max_epochs"] = 1
    v["finetune"]["max_epochs"] = 1
    v["pretrain_models"] = {"L2": {"latent_dim": 2}}
    v["finetune_models"] = {"L2_specific": {"base": "L2", "latent_pred": 2}}
    p["tracking"].update(tracking_uri=f"sqlite:///{empty_mlflow_store(work / 'mlflow.db')}",
                         artifact_root=str(work / "mlartifacts"),
                         reports_dir=str(work / "reports"))  # fmt: skip
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump(p))
    for stage in ("fetch", "beats", "split", "pretrain", "finetune", "evaluate"):
        assert main(["--params", str(params), stage]) == 0, stage
    return work, p


def test_mitdb_figures_recomputed_from_saved_models(mitdb_run):
    work, p = mitdb_run
    table = pd.read_csv(work / "data/beats/mitdb/beats.csv", dtype={"record": str},
                        keep_default_na=False, na_values={"pre_rr_s": [""], "post_rr_s": [""]})  # fmt: skip
    x = np.load(work / "data/beats/mitdb/beats.npy")
    split = pd.read_csv(work / "data/splits/mitdb.csv", dtype={"record": str}).set_index("record")
    keep = table["aami"].isin(["N", "S", "V", "F", "Q"]).to_numpy()
    table, x = table[keep].reset_index(drop=True), x[keep].astype(np.float32)
    rr = table[["pre_rr_s", "post_rr_s"]].to_numpy(np.float64)
    med = table.groupby("record")[["pre_rr_s", "post_rr_s"]].transform("median").to_numpy()
    rr = np.where(np.isfinite(rr), rr, med)
    y = (table["aami"] == "V").to_numpy().astype(int)
    groups = table["record"].to_numpy()
    reported = json.loads((work / "reports/metrics.json").read_text())["mitdb"]
    v = p["vae"]
    for k in range(REPLICATES):
        role = table["record"].map(split[f"rep{k}"]).to_numpy()
        assert set(table.loc[role == "test", "record"]) == set(DS2)  # DS2 is the test set
        assert set(table.loc[np.isin(role, ["train", "val"]), "record"]) == set(DS1)
        test, dev = role == "test", np.isin(role, ["train", "val"])
        # below the caps, so every DS1 beat trains the probe and every DS2 beat is decoded
        assert dev.sum() <= v["probe_max_items"]["mitdb"] and test.sum() <= v["recon_max_items"]["mitdb"]
        seed = p["seed"] + k
        logits = {}
        for stage, name, fname in (("pretrain", "L2", "L2.naive.pt"),
                                   ("finetune", "L2_specific", "L2_specific.pt")):  # fmt: skip
            _, mu, rec, z_rr = encode_saved(work / "models/mitdb" / stage / f"rep{k}" / fname,
                                            x, rr)  # fmt: skip
            feats = np.hstack([mu, z_rr])
            _, (_, proba, logits[name], _) = best_probe(feats, y, groups, dev, test, seed)
            r = reported[name][f"rep{k}"]
            assert r["mse"] == pytest.approx(float(np.mean((x[test] - rec[test]) ** 2)), rel=1e-4)
            auc = roc_auc_score(y[test], proba)
            assert r["auroc"] == pytest.approx(auc, abs=2e-6)
            lo, hi = _ci(auc, int(y[test].sum()), int((1 - y[test]).sum()))
            assert (r["auroc_lo"], r["auroc_hi"]) == pytest.approx((lo, hi), abs=2e-6)
        # beats cluster in records: the interval and p come from resampling whole DS2 records
        r = reported["L2_specific"][f"rep{k}"]
        check_vs_naive(r, y[test], logits["L2"], logits["L2_specific"], groups[test],
                       v["bootstrap_samples"], seed)  # fmt: skip
    assert reported["L2_specific"]["n_replicates"] == REPLICATES
