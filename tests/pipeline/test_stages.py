"""The fetch → beats → split stages on a small real mirror with bad records mixed in."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ecglatent.cli import main
from ecglatent.signal.synthetic import synthetic_ecg
from ecglatent.sources.leads import STANDARD_12
from tests.conftest import write_wfdb

N_PTBXL = 24
MITDB_RECORDS = ["100", "106", "114"]


def _make_mirror(real: Path, dst: Path) -> dict[str, str]:
    """A mirror holding real records plus one bad record per failure mode; returns id → kind."""
    ptb = dst / "ptb-xl"
    ptb.mkdir(parents=True)
    shutil.copyfile(real / "ptb-xl" / "scp_statements.csv", ptb / "scp_statements.csv")
    with (real / "ptb-xl" / "ptbxl_database.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1 : N_PTBXL + 1]
    hr = header.index("filename_hr")
    for row in body:
        for ext in (".hea", ".dat"):
            src = real / "ptb-xl" / (row[hr] + ext)
            (ptb / row[hr]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, ptb / (row[hr] + ext))
    bad_dir = ptb / "records500" / "99000"
    ecg = synthetic_ecg(fs=500, duration_s=10, seed=3)
    kinds: dict[str, str] = {}

    def add(ecg_id: int, kind: str, name: str) -> None:
        new = list(body[0])
        new[header.index("ecg_id")] = str(ecg_id)
        new[header.index("patient_id")] = str(900000 + ecg_id)
        new[hr] = f"records500/99000/{name}"
        body.append(new)
        kinds[str(ecg_id)] = kind

    sig = ecg.signal
    p = write_wfdb(bad_dir, "trunc", sig, 500, STANDARD_12)
    dat = p.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:1000])
    add(99001, "truncated", "trunc")
    p = write_wfdb(bad_dir, "corrupt", sig, 500, STANDARD_12)
    p.with_suffix(".hea").write_text("garbage header line\n")
    add(99002, "corrupt", "corrupt")
    nan = sig.copy()
    nan[5, 100:300] = np.nan
    write_wfdb(bad_dir, "nan", nan, 500, STANDARD_12)
    add(99003, "nan", "nan")
    flat = sig.copy()
    flat[9] = 0
    write_wfdb(bad_dir, "flat", flat, 500, STANDARD_12)
    add(99004, "flat", "flat")
    write_wfdb(bad_dir, "short", synthetic_ecg(fs=500, duration_s=2).signal, 500, STANDARD_12)
    add(99005, "short", "short")
    write_wfdb(bad_dir, "unknown", sig, 500, list(STANDARD_12[:11]) + ["X7"])
    add(99006, "unknown lead", "unknown")
    khz = synthetic_ecg(fs=1000, duration_s=10, seed=3)
    write_wfdb(bad_dir, "khz", khz.signal, 1000, STANDARD_12)
    add(99007, "good 1 kHz", "khz")
    with (ptb / "ptbxl_database.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *body])
    mit = dst / "mitdb"
    mit.mkdir()
    for rec in MITDB_RECORDS:
        for ext in (".hea", ".dat", ".atr"):
            shutil.copyfile(real / "mitdb" / f"{rec}{ext}", mit / f"{rec}{ext}")
    (mit / "RECORDS").write_text("\n".join(MITDB_RECORDS) + "\n")
    return kinds


@pytest.fixture(scope="module")
def pipeline_run(mirror: Path, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    work = tmp_path_factory.mktemp("pipeline")
    kinds = _make_mirror(mirror, work / "mirror")
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["data"]["mirror"] = str(work / "mirror")
    params["data"]["raw_dir"] = str(work / "data/raw")
    params["preprocess"]["out_dir"] = str(work / "data/beats")
    params["preprocess"]["n_jobs"] = 2
    params["split"]["out_dir"] = str(work / "data/splits")
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("fetch", "beats", "split"):
        assert main(["--params", str(work / "params.yaml"), stage]) == 0
    return work, kinds


def test_fetch_copies_layout(pipeline_run):
    work, kinds = pipeline_run
    raw = work / "data/raw"
    table = pd.read_csv(raw / "ptb-xl" / "ptbxl_database.csv")
    assert len(table) == N_PTBXL + len(kinds)
    assert (raw / "ptb-xl/records500/00000/00001_hr.hea").exists()
    assert (raw / "mitdb/RECORDS").read_text().split() == MITDB_RECORDS


def test_every_bad_record_rejected_with_its_reason(pipeline_run):
    work, kinds = pipeline_run
    rejects = pd.read_csv(work / "data/beats/rejects.csv", dtype=str).set_index("record")
    expected = {
        "99001": "truncated|cannot read",
        "99002": "corrupt header",
        "99003": "NaN",
        "99004": "flat lead",
        "99005": "too short",
        "99006": "unknown lead",
    }
    for rid, pattern in expected.items():
        assert rid in rejects.index, f"{kinds[rid]} record {rid} not in rejects"
        assert pd.Series([rejects.at[rid, "reason"]]).str.contains(pattern).all(), rejects.at[
            rid, "reason"
        ]
    assert "99007" not in rejects.index  # a 1 kHz record is resampled, not rejected


def test_no_good_record_dropped_silently(pipeline_run):
    work, kinds = pipeline_run
    records = pd.read_csv(work / "data/beats/ptb-xl/records.csv")
    rejects = pd.read_csv(work / "data/beats/rejects.csv", dtype=str)
    table = pd.read_csv(work / "data/raw/ptb-xl/ptbxl_database.csv")
    seen = set(records["record_id"].astype(str)) | set(
        rejects.loc[rejects.database == "ptb-xl", "record"]
    )
    assert seen == set(table["ecg_id"].astype(str))
    real_rejected = set(rejects.record) - set(kinds)
    assert len(real_rejected) <= 2, f"real PTB-XL records rejected: {rejects}"


def test_median_beats_table_and_array_agree(pipeline_run):
    work, _ = pipeline_run
    records = pd.read_csv(work / "data/beats/ptb-xl/records.csv")
    medians = np.load(work / "data/beats/ptb-xl/median_beats.npy")
    assert medians.shape == (len(records), 12, 400)
    assert medians.dtype == np.float32 and np.isfinite(medians).all()
    for col in ("record_id", "patient_id", "age", "sex", "fs", "rr_mean_s", "rr_std_s", "n_beats_kept",
                "superclasses"):  # fmt: skip
        assert col in records.columns
    assert records["rr_mean_s"].between(0.3, 2.0).all()
    # Median beats are centred on the R peak: lead II's largest deflection sits mid-window.
    centre = np.abs(medians[:, 1]).argmax(axis=1)
    assert np.median(np.abs(centre - 200)) < 10


def test_mitdb_beats_by_lead_name(pipeline_run):
    work, _ = pipeline_run
    beats = pd.read_csv(work / "data/beats/mitdb/beats.csv", dtype={"record": str})
    windows = np.load(work / "data/beats/mitdb/beats.npy")
    assert windows.shape == (len(beats), 2, 288)
    assert set(beats.lead0) == {"MLII"}  # 114 has MLII as channel 1
    assert beats.loc[beats.record == "114", "lead1"].iloc[0] == "V5"
    assert set(beats["aami"].dropna()) <= {"N", "S", "V", "F", "Q"}
    assert (beats["pre_rr_s"].dropna() > 0).all()


def test_splits(pipeline_run):
    work, _ = pipeline_run
    split = pd.read_csv(work / "data/splits/ptb-xl.csv")
    train, test = split[split.set == "train"], split[split.set == "test"]
    assert not set(train.patient_id) & set(test.patient_id)
    assert len(test) > 0 and len(train) > len(test)
    for k in range(5):
        fold = split[f"fold{k}"].fillna("")
        assert set(fold[split.set == "test"]) == {""}
        val = split[fold == "val"]
        trn = split[fold == "train"]
        assert not set(val.patient_id) & set(trn.patient_id)
    # replicates: outer fold k (PTB-XL strat_fold pairs) is replicate k's test set
    reps = [f"rep{k}" for k in range(5)]
    assert ((split[reps] == "test").sum(axis=1) == 1).all()  # every record tested once
    np.testing.assert_array_equal(split.outer_fold, (split.strat_fold - 1) // 2)
    for k, col in enumerate(reps):
        assert (split.loc[split[col] == "test", "outer_fold"] == k).all()
        dev = split[split[col] != "test"]
        assert not set(split.patient_id[split[col] == "test"]) & set(dev.patient_id)
        assert not set(dev.patient_id[dev[col] == "val"]) & set(dev.patient_id[dev[col] == "train"])
    mit = pd.read_csv(work / "data/splits/mitdb.csv", dtype={"record": str}).set_index("record")
    assert mit.at["100", "role"] == "test"
    assert mit.at["106", "role"] in {"train", "val"}
    assert {f"rep{k}" for k in range(5)} <= set(mit.columns)
    summary = json.loads((work / "data/splits/summary.json").read_text())
    assert summary["ptb-xl"]["task"] == "mi"
    assert sum(summary["ptb-xl"]["n_test_per_fold"]) == len(split)


def test_missing_mirror_is_a_clear_error(tmp_path, capsys):
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["data"]["mirror"] = str(tmp_path / "nowhere")
    params["data"]["raw_dir"] = str(tmp_path / "raw")
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    assert main(["--params", str(tmp_path / "p.yaml"), "fetch"]) == 2
    err = capsys.readouterr().err
    assert "has no ptb-xl/ folder" in err and "Traceback" not in err


def test_bad_params_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("preprocess:\n  bandpass: [1, 2]\n")
    assert main(["--params", str(tmp_path / "p.yaml"), "beats"]) == 2
    assert "unknown key(s) ['bandpass']" in capsys.readouterr().err


def test_challenge_without_mirror_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ECGLATENT_DATA_MIRROR", raising=False)
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["data"].update(mirror=None, raw_dir=str(tmp_path / "raw"), databases=["challenge-2021"])
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    assert main(["--params", str(tmp_path / "p.yaml"), "fetch"]) == 2
    err = capsys.readouterr().err
    assert "physionet.org/files/challenge-2021" in err and "data.mirror" in err
    assert "Traceback" not in err and not (tmp_path / "raw/challenge-2021").exists()


def test_pretraining_corpus_must_be_fetched(tmp_path, capsys):
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["siliconet"]["pretrain_databases"] = ["ptb-xl", "cinc"]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    assert main(["--params", str(tmp_path / "p.yaml"), "siliconet-beats"]) == 2
    assert "use ptb-xl and/or challenge-2021" in capsys.readouterr().err
