"""Bad input never crashes reading and always names its reason."""

from pathlib import Path

import numpy as np
import pytest

from ecglatent.errors import RecordError
from ecglatent.signal.synthetic import synthetic_ecg
from ecglatent.sources.leads import STANDARD_12
from ecglatent.sources.records import check_quality, read_record, select_leads, to_standard_12
from tests.conftest import write_wfdb


@pytest.fixture
def good(tmp_path: Path) -> Path:
    ecg = synthetic_ecg(fs=500, duration_s=10)
    return write_wfdb(tmp_path, "good", ecg.signal, 500, STANDARD_12)


def test_reads_good_record_in_mv(good: Path):
    rec = read_record(good)
    assert rec.signal.shape == (12, 5000)
    assert rec.fs == 500
    assert 0.8 < np.abs(rec.signal[1]).max() < 2.0  # lead II R wave ~1.2 mV
    check_quality(rec, 8.0, 0.005)  # raises nothing


def test_microvolt_units_are_converted(tmp_path: Path):
    ecg = synthetic_ecg(fs=500, duration_s=10)
    path = write_wfdb(tmp_path, "uv", ecg.signal * 1000, 500, STANDARD_12, units="uV")
    rec = read_record(path)
    np.testing.assert_allclose(rec.signal, ecg.signal, atol=2e-3)


def test_truncated_dat(good: Path):
    dat = good.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 2])
    with pytest.raises(RecordError, match="truncated|cannot read"):
        read_record(good)


def test_corrupt_header(good: Path):
    good.with_suffix(".hea").write_text("this is not a header\n\x00\x01")
    with pytest.raises(RecordError, match="corrupt header"):
        read_record(good)


def test_missing_header(tmp_path: Path):
    with pytest.raises(RecordError, match="not found"):
        read_record(tmp_path / "nothing")


def test_implausible_sampling_rate(good: Path):
    hea = good.with_suffix(".hea")
    first, *rest = hea.read_text().splitlines()
    parts = first.split()
    parts[2] = "5"
    hea.write_text("\n".join([" ".join(parts), *rest]) + "\n")
    with pytest.raises(RecordError, match="sampling rate"):
        read_record(good)


def test_nan_lead(tmp_path: Path):
    ecg = synthetic_ecg(fs=500, duration_s=10)
    sig = ecg.signal.copy()
    sig[3, 1000:1200] = np.nan
    rec = read_record(write_wfdb(tmp_path, "nan", sig, 500, STANDARD_12))
    with pytest.raises(RecordError, match=r"NaN.*aVR"):
        check_quality(rec, 8.0, 0.005)


def test_flat_lead(tmp_path: Path):
    sig = synthetic_ecg(fs=500, duration_s=10).signal.copy()
    sig[7] = 0.0
    rec = read_record(write_wfdb(tmp_path, "flat", sig, 500, STANDARD_12))
    with pytest.raises(RecordError, match=r"flat lead.*V2"):
        check_quality(rec, 8.0, 0.005)


def test_too_short(tmp_path: Path):
    sig = synthetic_ecg(fs=500, duration_s=2).signal
    rec = read_record(write_wfdb(tmp_path, "short", sig, 500, STANDARD_12))
    with pytest.raises(RecordError, match="too short: 2.0 s"):
        check_quality(rec, 8.0, 0.005)


def test_unknown_lead_name(tmp_path: Path):
    sig = synthetic_ecg(fs=500, duration_s=10).signal
    leads = list(STANDARD_12[:11]) + ["X7"]
    rec = read_record(write_wfdb(tmp_path, "unk", sig, 500, leads))
    with pytest.raises(RecordError, match=r"unknown lead name\(s\) \['X7'\]"):
        to_standard_12(rec)


def test_lowercase_and_shuffled_leads_are_reordered(tmp_path: Path):
    ecg = synthetic_ecg(fs=500, duration_s=10)
    order = np.random.default_rng(0).permutation(12)
    leads = [STANDARD_12[i].lower() for i in order]
    rec = to_standard_12(read_record(write_wfdb(tmp_path, "shuf", ecg.signal[order], 500, leads)))
    assert rec.leads == STANDARD_12
    np.testing.assert_allclose(rec.signal, ecg.signal, atol=2e-3)


def test_select_leads_by_name(tmp_path: Path):
    sig = synthetic_ecg(fs=360, duration_s=10, leads=("V5", "MLII")).signal
    rec = read_record(write_wfdb(tmp_path, "114", sig, 360, ["V5", "MLII"]))
    picked = select_leads(rec, ("MLII", "other"))
    assert picked.leads == ("MLII", "V5")
    np.testing.assert_allclose(picked.signal[0], rec.signal[1])
    with pytest.raises(RecordError, match="lead V1 not in record"):
        select_leads(rec, ("V1",))
