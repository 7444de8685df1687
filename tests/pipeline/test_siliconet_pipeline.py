"""The four SiliconNet stages, two epochs each, on a tiny slice of the real data into a real MLflow store.

The slice: the first 3 minutes of three DS1 and two DS2 MIT-BIH records (DS2's 228 has V1 and
100 has V5 as the second channel), the first 30 PTB-XL records, and one INCART-shaped record
(12 leads at 257 Hz, INCART's header spellings) the test writes from a minute of DS2's 233,
and three CinC 2021-format records (MATLAB v4 signals) written from PTB-XL records 31-33, one of
them under the Challenge's ptb-xl source (left out, PTB-XL being in the corpus already), all
copied into a mirror the test writes and brought in by `ecglatent fetch`. The registered
champion is then loaded as a pyfunc and served over HTTP by MLflow's own scoring app.
"""

from __future__ import annotations

import csv
import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import wfdb
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode

from ecglatent.cli import main
from ecglatent.evaluation.beat_metrics import CONFIG_ORDER
from ecglatent.signal.filters import resample
from ecglatent.sources import mitdb
from ecglatent.sources.records import read_record
from ecglatent.tracking.beat_pyfunc import OUTPUT_COLUMNS
from tests.conftest import empty_mlflow_store, write_cinc_record, write_wfdb

REPO = Path(__file__).resolve().parents[2]
DS1_RECORDS = ("106", "119", "208")
DS2_RECORDS = ("228", "100")
TRIM_S = 180
N_PTBXL = 30
SEEDS = (0, 1)
INCART_SOURCE, INCART_FROM_S, INCART_S = "233", 600, 60
INCART_FS = 257.0
# INCART's header names; each lead a different mix of 233's MLII (m) and V1 (v)
INCART_MIX = {"I": (0.6, 0.1), "II": (1.0, 0.0), "III": (0.4, -0.1), "AVR": (-0.8, -0.05),
              "AVL": (0.1, 0.2), "AVF": (0.7, -0.05), "V1": (0.0, 1.0), "V2": (0.2, 1.2),
              "V3": (0.5, 0.5), "V4": (0.8, 0.1), "V5": (0.9, 0.1), "V6": (0.7, 0.0)}  # fmt: skip
CINC_RECORDS = {"training/georgia/g1/E00001": 31, "training/georgia/g1/E00002": 32,
                "training/ptb-xl/g1/HR00033": 33}  # fmt: skip
MAX_TEST_BEATS = 120
EXPERIMENT = "test-siliconet"
MODEL_NAME = "ecg-beat-classifier"


def _copy_trimmed(src: Path, dst: Path, record: str, seconds: float) -> None:
    """The first ``seconds`` of a MIT-BIH record and its reference annotations."""
    header = wfdb.rdheader(str(src / record))
    n = int(seconds * header.fs)
    rec = wfdb.rdrecord(str(src / record), sampto=n)
    write_wfdb(dst, record, rec.p_signal.T, rec.fs, rec.sig_name)
    ann = wfdb.rdann(str(src / record), "atr", sampto=n)
    wfdb.wrann(record, "atr", ann.sample, ann.symbol, aux_note=ann.aux_note, write_dir=str(dst))


def _make_incart(real: Path, dst: Path) -> None:
    """One 12-lead 257 Hz record with reference beat annotations, made from a minute of 233."""
    src = str(real / "mitdb" / INCART_SOURCE)
    fs_in = wfdb.rdheader(src).fs
    a, b = int(INCART_FROM_S * fs_in), int((INCART_FROM_S + INCART_S) * fs_in)
    rec = wfdb.rdrecord(src, sampfrom=a, sampto=b, channel_names=["MLII", "V1"])
    m, v = resample(rec.p_signal.T, fs_in, INCART_FS)
    leads = np.stack([cm * m + cv * v for cm, cv in INCART_MIX.values()])
    write_wfdb(dst, "I01", leads, INCART_FS, list(INCART_MIX))
    ann = wfdb.rdann(src, "atr", sampfrom=a, sampto=b, shift_samps=True)
    beats = np.isin(ann.symbol, list(mitdb.BEAT_SYMBOLS))
    samples = np.round(np.asarray(ann.sample)[beats] * INCART_FS / fs_in).astype(np.int64)
    wfdb.wrann("I01", "atr", samples, list(np.asarray(ann.symbol)[beats]), write_dir=str(dst))
    (dst / "RECORDS").write_text("I01\n")


def _make_cinc(real: Path, dst: Path) -> None:
    from ecglatent.sources import ptbxl
    from ecglatent.sources.records import to_standard_12

    db = ptbxl.read_database(real / "ptb-xl")
    for rel, ecg_id in CINC_RECORDS.items():
        rec = to_standard_12(read_record(ptbxl.record_path(real / "ptb-xl", db.loc[ecg_id], 500)))
        path = dst / rel
        write_cinc_record(path.parent, path.name, rec.signal, rec.fs, rec.leads, ["Age: 60"])


def _make_mirror(real: Path, dst: Path) -> None:
    _make_incart(real, dst / "incartdb")
    _make_cinc(real, dst / "challenge-2021")
    mit = dst / "mitdb"
    for rec in DS1_RECORDS + DS2_RECORDS:
        _copy_trimmed(real / "mitdb", mit, rec, TRIM_S)
    (mit / "RECORDS").write_text("\n".join(DS1_RECORDS + DS2_RECORDS) + "\n")
    ptb = dst / "ptb-xl"
    ptb.mkdir(parents=True)
    shutil.copyfile(real / "ptb-xl" / "scp_statements.csv", ptb / "scp_statements.csv")
    with (real / "ptb-xl" / "ptbxl_database.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    hr = rows[0].index("filename_hr")
    for row in rows[1 : N_PTBXL + 1]:
        (ptb / row[hr]).parent.mkdir(parents=True, exist_ok=True)
        for ext in (".hea", ".dat"):
            shutil.copyfile(real / "ptb-xl" / (row[hr] + ext), ptb / (row[hr] + ext))
    with (ptb / "ptbxl_database.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows[: N_PTBXL + 1])


def tiny_params(work: Path, mirror: Path) -> Path:
    p = yaml.safe_load((REPO / "params.yaml").read_text())
    p["data"].update(mirror=str(mirror), raw_dir=str(work / "data/raw"), subset=0,
                     databases=["ptb-xl", "mitdb", "incartdb", "challenge-2021"])  # fmt: skip
    p["tracking"].update(tracking_uri=f"sqlite:///{empty_mlflow_store(work / 'mlflow.db')}",
                         artifact_root=str(work / "mlartifacts"), register=True)  # fmt: skip
    s = p["siliconet"]
    s.update(out_dir=str(work / "data/siliconet"), models_dir=str(work / "models/siliconet"),
             reports_dir=str(work / "reports"), seeds=list(SEEDS), configs=list(CONFIG_ORDER),
             max_pretrain_beats=0, max_train_beats=200, max_val_beats=150,
             max_test_beats=MAX_TEST_BEATS, device="cpu", threads=1, experiment=EXPERIMENT,
             model_name=MODEL_NAME, pretrain_databases=["ptb-xl", "challenge-2021"],
             min_v_beats=0, eval_threads=1)  # fmt: skip
    s["pretrain"].update(max_epochs=2, batch_size=64)
    s["downstream"].update(max_epochs=2, frozen_max_epochs=0, batch_size=64)
    path = work / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


@pytest.fixture(scope="module")
def silicon_run(mirror: Path, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("siliconet")
    _make_mirror(mirror, work / "mirror")
    params = tiny_params(work, work / "mirror")
    for stage in ("fetch", "siliconet-beats", "siliconet-pretrain", "siliconet-downstream",
                  "siliconet-evaluate"):  # fmt: skip
        assert main(["--params", str(params), stage]) == 0, stage
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    return work


def test_beat_sets_keep_ds2_out_of_training(silicon_run: Path):
    data = silicon_run / "data/siliconet"
    train = pd.read_csv(data / "mitdb/ds1_train.csv", dtype={"record": str})
    val = pd.read_csv(data / "mitdb/ds1_val.csv", dtype={"record": str})
    assert set(train.record) | set(val.record) == set(DS1_RECORDS)
    assert not (set(train.record) | set(val.record)) & set(mitdb.DS2)
    for name in ("ds1_train", "ds1_val", "ds2_MLII", "ds2_other"):
        x = np.load(data / f"mitdb/{name}.npy")
        table = pd.read_csv(data / f"mitdb/{name}.csv", dtype={"record": str})
        assert x.shape == (len(table), 301) and set(table.aami) <= {"N", "V"}
    # 50/50 stratified: both halves hold V beats in about the same proportion
    assert abs(len(train) - len(val)) <= 1
    assert abs(train.label.mean() - val.label.mean()) < 0.01
    other = pd.read_csv(data / "mitdb/ds2_other.csv", dtype={"record": str})
    assert set(other.record) == set(DS2_RECORDS)
    assert other.groupby("record")["lead"].first().to_dict() == {"228": "V1", "100": "V5"}
    pre = pd.read_csv(data / "pretrain/beats.csv", dtype={"record": str})
    x_pre = np.load(data / "pretrain/beats.npy")
    # a Challenge-sized corpus is stored as float16
    assert x_pre.shape == (len(pre), 12, 301) and x_pre.dtype == np.float16
    cinc = pre[pre.database == "challenge-2021"]
    assert set(pre.database) == {"ptb-xl", "challenge-2021"}
    assert set(cinc.record) == {r for r in CINC_RECORDS if "/ptb-xl/" not in r}
    assert pre[pre.database == "ptb-xl"].record.nunique() > 20
    # patients (records, for the Challenge) on one side only
    assert not set(pre[pre.role == "train"].group) & set(pre[pre.role == "val"].group)
    assert set(cinc.groupby("record")["group"].nunique()) == {1}
    norm = json.loads((data / "normaliser.json").read_text())
    assert norm["mitdb"]["std"] > 0 and norm["pretrain"]["std"] > 0
    assert "challenge-2021" in norm["pretrain"]["fitted_on"]
    x_tr = np.load(data / "mitdb/ds1_train.npy")
    assert np.isclose(norm["mitdb"]["mean"], x_tr.mean(), atol=1e-4)  # training half only
    assert np.isclose(norm["mitdb"]["std"], x_tr.std(), rtol=1e-4)
    assert (data / "rejects.csv").exists()
    inc = pd.read_csv(data / "incartdb/beats.csv", dtype={"record": str})
    assert np.load(data / "incartdb/beats.npy").shape == (len(inc), 12, 301)
    assert set(inc.record) == {"I01"} and set(inc.aami) == {"N", "V"}


def test_artifacts_written(silicon_run: Path):
    models = silicon_run / "models/siliconet"
    assert (models / "pretrain/simsiam.pt").exists()
    index = pd.read_csv(models / "downstream/index.csv")
    assert len(index) == len(CONFIG_ORDER) * len(SEEDS)
    for row in index.itertuples():
        assert (models / "downstream" / row.path).exists()
    assert (silicon_run / "reports/siliconet_results.csv").exists()
    metrics = json.loads((silicon_run / "reports/siliconet_metrics.json").read_text())
    assert set(metrics["configs"]) == set(CONFIG_ORDER)
    assert metrics["anchor"] == {"low": 0.89, "high": 0.9}


def test_reported_f1_recomputed_from_saved_models(silicon_run: Path):
    """Golden values: every model's DS2 MLII F1, Se, PPV recomputed here from its saved weights,
    its saved threshold and the stored DS2 windows (softmax of the network, sklearn metrics).
    The network runs at the precision the run resolved (``siliconet.precision: auto``: bf16 on
    a CPU with native bf16), on its BatchNorm-folded copy in the pipeline's scoring slices,
    since a bf16 rounding can move a beat across the threshold."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    from ecglatent.models.siliconet import BeatClassifier, inference_copy
    from ecglatent.pipeline.siliconet_data import stratified_cap
    from ecglatent.training.precision import embeddings_in, resolve_precision
    from ecglatent.training.simsiam import EVAL_BATCH

    data = silicon_run / "data/siliconet"
    norm = json.loads((data / "normaliser.json").read_text())["mitdb"]
    x = np.load(data / "mitdb/ds2_MLII.npy")
    table = pd.read_csv(data / "mitdb/ds2_MLII.csv", dtype={"record": str})
    y = table["label"].to_numpy()
    # the evaluate stage's cap on test beats (same lead, same class shares, params' seed)
    keep = stratified_cap(np.char.add(table["lead"].astype(str).to_numpy(), y.astype(str)),
                          MAX_TEST_BEATS, yaml.safe_load((silicon_run / "params.yaml").read_text())["seed"])  # fmt: skip
    x, y = ((x[keep] - norm["mean"]) / norm["std"]).astype(np.float32), y[keep]
    assert 0 < y.sum() < len(y)
    results = pd.read_csv(silicon_run / "reports/siliconet_results.csv")
    index = pd.read_csv(silicon_run / "models/siliconet/downstream/index.csv")
    for row in index.itertuples():
        saved = torch.load(silicon_run / "models/siliconet/downstream" / row.path,
                           weights_only=False)  # fmt: skip
        net = BeatClassifier()
        net.load_state_dict(saved["state_dict"])
        net.eval()
        xt = torch.as_tensor(x[:, None, :])
        with torch.no_grad(), embeddings_in(net, resolve_precision("auto", "cpu")):
            folded = inference_copy(net)
            logits = torch.cat([folded(xt[i : i + EVAL_BATCH]) for i in range(0, len(xt), EVAL_BATCH)])
            p_v = torch.softmax(logits, dim=1)[:, 1].numpy()
        pred = (p_v >= saved["threshold"]).astype(int)
        rep = results[(results.config == row.config) & (results.seed == row.seed)
                      & (results["eval"] == "DS2 MLII")].iloc[0]  # fmt: skip
        assert rep.tp + rep.fp + rep.fn + rep.tn == len(y)
        assert rep.f1 == pytest.approx(f1_score(y, pred, zero_division=0), abs=1e-9), row
        assert rep.se == pytest.approx(recall_score(y, pred), abs=1e-9), row
        if pred.any():
            assert rep.ppv == pytest.approx(precision_score(y, pred), abs=1e-9), row


def test_one_run_per_configuration_and_seed_with_f1_per_epoch(silicon_run: Path):
    client = MlflowClient()
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], "tags.stage = 'siliconet_downstream'")
    pairs = sorted((r.data.tags["config"], int(r.data.tags["seed"])) for r in runs)
    assert pairs == sorted((c, s) for c in CONFIG_ORDER for s in SEEDS)
    for r in runs:
        assert r.data.params["precision"] in ("fp32", "bf16")  # what 'auto' resolved to
        for key in ("downstream/train_loss", "downstream/val_loss", "downstream/val_f1"):
            assert [m.step for m in client.get_metric_history(r.info.run_id, key)] == [0, 1]
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id, "confusion")}
        assert {"confusion/val.json", "confusion/test.json", "confusion/test.png"} <= artifacts
        assert "test/DS2_MLII/f1" in r.data.metrics
    (pre,) = client.search_runs([exp.experiment_id], "tags.stage = 'siliconet_pretrain'")
    history = client.get_metric_history(pre.info.run_id, "pretrain/val_loss")
    assert [m.step for m in history] == [0, 1]
    (ev,) = client.search_runs([exp.experiment_id], "tags.stage = 'siliconet_evaluate'")
    tables = {a.path for a in client.list_artifacts(ev.info.run_id, "tables")}
    assert "tables/siliconet.md" in tables and "tables/siliconet_results.csv" in tables


def test_report_has_the_five_configurations_and_per_lead_rows(silicon_run: Path):
    text = (silicon_run / "reports/siliconet.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| | randfeatures"))
    assert header.split("|")[2:7] == [f" {c} " for c in CONFIG_ORDER]
    for row in ("| DS2 MLII |", "| DS2 other |", "| DS2 V1 |", "| DS2 V5 |", "| INCART V1 |",
                "| INCART aVR |", "| Leads average |"):  # fmt: skip
        assert row in text, row
    assert "0.89–0.90" in text and "Wilcoxon" in text
    assert "## What these numbers can and cannot show" in text and "22 records" in text
    results = pd.read_csv(silicon_run / "reports/siliconet_results.csv")
    per_model = results.groupby(["config", "seed"])["eval"].apply(set)
    assert len(per_model) == len(CONFIG_ORDER) * len(SEEDS)
    for evals in per_model:  # every model scored on DS2 per lead and on all 12 INCART leads
        assert {"DS2 MLII", "DS2 V1", "DS2 V5"} <= evals
        assert {e for e in evals if e.startswith("INCART ")} >= {f"INCART {n}" for n in (
            "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")}  # fmt: skip
    ds2 = results[results["eval"] == "DS2 MLII"]
    # the stratified test sample: ~MAX_TEST_BEATS beats, V beats included
    assert ((ds2.tp + ds2.fp + ds2.fn + ds2.tn - MAX_TEST_BEATS).abs() <= 2).all()
    assert ((ds2.tp + ds2.fn) > 0).all()
    metrics = json.loads((silicon_run / "reports/siliconet_metrics.json").read_text())
    for c in CONFIG_ORDER:
        f1 = ds2[ds2.config == c].f1
        assert metrics["configs"][c]["ds2_f1_median"] == pytest.approx(f1.median(), abs=1e-5)
    # V beats per lead are reported; pairwise comparisons pair by seed only
    v = metrics["v_beats_per_lead"]
    assert v["DS2 MLII"] == int(ds2.tp.iloc[0] + ds2.fn.iloc[0])
    assert {"DS2 V1", "DS2 V5"} <= set(v) and "V beats per test set and lead" in text
    pair = metrics["pairwise"]["randinit-randfeatures"]
    assert pair["n_seeds"] == len(SEEDS)
    wide = ds2.pivot_table(index="seed", columns="config", values="f1")
    assert pair["diff"] == pytest.approx((wide["randinit"] - wide["randfeatures"]).mean(), abs=1e-5)


def _real_record(mirror: Path, record: str, seconds: float) -> tuple[dict, np.ndarray]:
    rec = read_record(mirror / "mitdb" / record)
    n = int(seconds * rec.fs)
    samples, _ = mitdb.read_beat_annotations(mirror / "mitdb" / record)
    row = {"signal": rec.signal[:, :n].tolist(), "fs": rec.fs, "leads": list(rec.leads)}
    return row, samples[samples < n]


def test_champion_labels_beats_of_a_raw_record(silicon_run: Path, mirror: Path):
    client = MlflowClient()
    version = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert version.tags["score_metric"] == "val_f1"
    index = pd.read_csv(silicon_run / "models/siliconet/downstream/index.csv")
    best = index.loc[index.val_f1.idxmax()]
    assert version.tags["val_f1"] == f"{best.val_f1:.6f}"  # chosen on validation, not DS2
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    # record 233 (DS2, MLII/V1, frequent PVCs), the minute after the test's 5-minute slice
    row, truth = _real_record(mirror, "233", 360)
    out = model.predict(pd.DataFrame([row]))
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert set(out.label) <= {"N", "V"} and out.probability_v.between(0, 1).all()
    assert (out.quality == "ok").all() and (out.lead == "MLII").all()
    fs = row["fs"]
    inner = truth[(truth > 1.1 * fs) & (truth < len(row["signal"][0]) - 0.3 * fs)]
    dist = np.abs(out["sample"].to_numpy()[:, None] - inner[None, :]).min(axis=0)
    assert np.mean(dist <= 0.05 * fs) > 0.95  # detected R peaks match the reference beats
    assert abs(len(out) - len(inner)) <= 0.05 * len(inner)


def _model_id(version) -> str:
    """The logged model behind a registry version (its source is ``models:/<model_id>``)."""
    model_id = version.model_id or version.source.removeprefix("models:/")
    assert model_id.startswith("m-"), version.source
    return model_id


def test_registered_beat_classifier_carries_its_own_scores(silicon_run: Path):
    """The champion's logged model holds its DS2 F1 and DS1 validation F1 (MLflow 3 model_id)."""
    client = MlflowClient()
    version = client.get_model_version_by_alias(MODEL_NAME, "champion")
    linked = {m.key: m.value for m in mlflow.get_logged_model(_model_id(version)).metrics}
    assert linked["val/f1"] == pytest.approx(float(version.tags["val_f1"]), abs=1e-6)
    results = pd.read_csv(silicon_run / "reports/siliconet_results.csv")
    own = results[(results.config == version.tags["config"])
                  & (results.seed == int(version.tags["seed"])) & (results["eval"] == "DS2 MLII")]  # fmt: skip
    assert linked["test/DS2_MLII/f1"] == pytest.approx(float(own.f1.iloc[0]))


def test_champion_on_beats_matches_the_trained_network(silicon_run: Path):
    """Raw-mV beats in → the same P(V) as the saved network on the normalised beats."""
    from ecglatent.models.siliconet import BeatClassifier
    from ecglatent.training.simsiam import predict_proba

    data = silicon_run / "data/siliconet/mitdb"
    x = np.load(data / "ds2_MLII.npy")[:40]
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    out = model.predict(pd.DataFrame({"beat": list(x.astype(np.float64))}))
    assert out["row"].tolist() == list(range(len(x))) and (out["sample"] == -1).all()
    index = pd.read_csv(silicon_run / "models/siliconet/downstream/index.csv")
    best = index.loc[index.val_f1.idxmax()]
    saved = torch.load(silicon_run / "models/siliconet/downstream" / best.path, weights_only=False)
    net = BeatClassifier()
    net.load_state_dict(saved["state_dict"])
    norm = saved["normaliser"]
    expected = predict_proba(net, ((x - norm["mean"]) / norm["std"])[:, None, :])[:, 1]
    np.testing.assert_allclose(out["probability_v"], expected, atol=1e-5)
    labels = np.where(expected >= saved["threshold"], "V", "N")
    assert out["label"].tolist() == labels.tolist()


def test_predict_cli_labels_every_beat_of_wfdb_records(silicon_run: Path):
    """`ecglatent predict --model models:/ecg-beat-classifier@champion` on WFDB files."""
    out = silicon_run / "beat_labels.csv"
    files = [str(silicon_run / "mirror/mitdb" / f"{r}.hea") for r in DS2_RECORDS]
    uri = f"models:/{MODEL_NAME}@champion"
    args = ["--params", str(silicon_run / "params.yaml"), "predict", "--model", uri, *files]
    assert main([*args, "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype={"record": str})
    assert [Path(r).name for r in dict.fromkeys(table.record)] == list(DS2_RECORDS)
    for k, rec in enumerate(DS2_RECORDS):
        rows = table[table.record.str.endswith(rec)]
        assert (rows["row"] == k).all() and set(rows.label) <= {"N", "V"}
        n_ref = len(mitdb.read_beat_annotations(silicon_run / "mirror/mitdb" / rec)[0])
        assert abs(len(rows) - n_ref) <= 0.1 * n_ref  # one label per detected beat


def test_champion_answers_bad_rows_with_their_quality(silicon_run: Path, mirror: Path):
    """Each bad row gets one row saying why; only a request without beat/signal is refused."""
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    with pytest.raises(MlflowException) as err:
        model.predict(pd.DataFrame([{"fs": 360.0}]))
    assert err.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)
    row, _ = _real_record(mirror, "233", 20)
    v1_only = {**row, "signal": row["signal"][1:], "leads": ["V1"]}  # whichever lead it has
    bad = [{"beat": [0.0] * 100}, {"signal": [[0.0] * 5000] * 2, "fs": 360.0}, v1_only]
    out = model.predict(pd.DataFrame(bad))
    first = out.groupby("row").first()
    assert first["quality"].tolist() == ["invalid_beat", "invalid_signal", "ok"]
    assert first.loc[2, "lead"] == "V1" and (out[out.row == 2].quality == "ok").all()
    assert out[out.row < 2]["probability_v"].isna().all() and (out[out.row < 2]["sample"] == -1).all()
    assert (out.groupby("row").size().loc[[0, 1]] == 1).all()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def scoring_url(silicon_run: Path):
    """The champion behind MLflow's scoring app (what `mlflow models serve` runs), on a thread."""
    import os

    import uvicorn
    from mlflow.pyfunc import scoring_server

    saved_env = dict(os.environ)
    app = scoring_server.init(mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion"))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "scoring server did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/invocations"
    server.should_exit = True
    thread.join(timeout=30)
    os.environ.clear()
    os.environ.update(saved_env)  # init() marks the process as a serving environment


def test_served_champion_labels_beats_and_records_over_http(scoring_url: str, mirror: Path):
    row, truth = _real_record(mirror, "233", 30)
    beats = [{"beat": [0.0] * 301}, {"beat": list(np.sin(np.arange(301) / 9.0))}]
    status, body = _post(scoring_url, {"dataframe_records": beats + [row]})
    assert status == 200, body
    out = pd.DataFrame(body["predictions"])
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert out["row"].tolist()[:2] == [0, 1] and (out["row"][2:] == 2).all()
    assert set(out.label) <= {"N", "V"} and out.probability_v.between(0, 1).all()
    inner = truth[(truth > 1.1 * row["fs"]) & (truth < 30 * row["fs"] - 0.3 * row["fs"])]
    assert abs((out["row"] == 2).sum() - len(inner)) <= 2  # one label per beat of the record


def test_served_champion_answers_each_bad_row_with_its_quality(scoring_url: str):
    cases = [({"beat": [0.0] * 100}, "invalid_beat", "expected (301,)"),
             ({"signal": [0.0] * 5000}, "implausible_fs", "'fs'"),
             ({"signal": [[0.0] * 5000] * 2, "fs": 360.0}, "invalid_signal", "'leads'"),
             ({"signal": [[0.0] * 5000] * 2, "fs": 360.0, "leads": "MLII"}, "invalid_signal",
              "list of lead names"),
             ({"signal": [[0.0] * 5000] * 2, "fs": 360.0, "leads": ["V1", "V2"], "lead": "II"},
              "missing_lead", "not among leads"),
             ({"signal": [[0.0] * 5000] * 2, "fs": 360.0, "leads": ["V1", "V2"]}, "flat_lead",
              "V1"),
             ({"signal": [0.0] * 5000, "fs": 5.0}, "implausible_fs", "plausible"),
             ({"signal": [0.0] * 100, "fs": 360.0}, "too_short", "one beat window")]  # fmt: skip
    status, body = _post(scoring_url, {"dataframe_records": [c for c, _, _ in cases]})
    assert status == 200, body
    out = pd.DataFrame(body["predictions"])
    assert out["row"].tolist() == list(range(len(cases)))  # one row each, in order
    for (_, quality, reason), got in zip(cases, out.itertuples(), strict=True):
        assert got.quality == quality and reason in got.quality_detail, got
    status, body = _post(scoring_url, {"dataframe_records": [{"fs": 360.0}]})
    assert status == 400 and body["error_code"] == ErrorCode.Name(INVALID_PARAMETER_VALUE)


def test_dvc_plots_show_renders_the_simsiam_history(silicon_run: Path, tmp_path):
    """dvc.yaml's top-level plot of SimSiam's history draws the declared losses per epoch."""
    from tests.pipeline.test_dvc_plots import declared_fields, dvc_repo_with, plots_json

    rel = "models/siliconet/pretrain/history.csv"
    repo = dvc_repo_with({rel: silicon_run / rel}, tmp_path)
    (plot,) = plots_json(repo)[rel]
    rows = plot["content"]["data"]["values"]
    assert {r["field"] for r in rows} == set(declared_fields(rel)) == {"train_loss", "val_loss"}
    assert sorted({float(r["epoch"]) for r in rows}) == [0.0, 1.0]  # max_epochs=2
