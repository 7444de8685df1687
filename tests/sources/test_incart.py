"""INCART loader on WFDB records the test writes: 12 leads at 257 Hz, MIT-BIH beat symbols."""

from __future__ import annotations

import numpy as np
import wfdb

from ecglatent.sources import incart
from ecglatent.sources.leads import STANDARD_12, normalise_lead
from tests.conftest import write_wfdb

FS_IN = 257.0
# INCART headers spell the augmented leads in capitals; stored here out of standard order
HEADER_LEADS = ["V1", "V2", "V3", "V4", "V5", "V6", "I", "II", "III", "AVR", "AVL", "AVF"]
# 2 s apart: 514 samples at 257 Hz are exactly 500 at 250 Hz, so peaks land on the grid
BEATS = np.arange(1, 13) * 514
SYMBOLS = ["N", "V", "A", "N", "L", "V", "Q", "N", "E", "N", "+", "N"]


def _amplitude(lead: str) -> float:
    """A distinct signed spike height per standard lead, so a mix-up of leads shows."""
    k = STANDARD_12.index(lead)
    return (0.2 + 0.1 * k) * (-1 if k % 2 else 1)


def _write_record(root, name: str, leads: list[str]) -> None:
    n = int(FS_IN * 26)
    t = np.arange(n)
    spikes = sum(np.exp(-0.5 * ((t - b) / 3.0) ** 2) for b in BEATS)
    signal = np.stack([_amplitude(normalise_lead(lead)) * spikes for lead in leads])
    write_wfdb(root, name, signal, FS_IN, leads)
    wfdb.wrann(name, "atr", BEATS, symbol=SYMBOLS, write_dir=str(root))


def test_reads_twelve_leads_in_standard_order(tmp_path):
    _write_record(tmp_path, "I01", HEADER_LEADS)
    rec = incart.read_incart(tmp_path, "I01")
    assert rec.leads == STANDARD_12 and rec.fs == FS_IN
    peak = rec.signal[:, BEATS[0]]
    np.testing.assert_allclose(peak, [_amplitude(lead) for lead in STANDARD_12], atol=2e-3)


def test_nv_windows_per_lead_and_rejects(tmp_path):
    _write_record(tmp_path, "I01", HEADER_LEADS)
    _write_record(tmp_path, "I02", HEADER_LEADS[:-1])  # aVF missing: rejected, not raised
    (tmp_path / "RECORDS").write_text("I01\nI02\n")
    assert incart.list_records(tmp_path) == ["I01", "I02"]

    x, table = incart.incart_nv_beats(tmp_path)
    keep = [s for s in SYMBOLS if s in "NLVE"]  # AAMI N and V only; A, Q, '+' dropped
    assert x.shape == (len(keep), 12, 301) and x.dtype == np.float32
    assert table["record"].unique().tolist() == ["I01"]
    assert table["symbol"].tolist() == keep
    assert table["label"].tolist() == [1 if s in "VE" else 0 for s in keep]
    np.testing.assert_array_equal(table["sample"], np.round(table["sample_orig"] * 250 / 257))
    assert set(table.attrs["rejects"]) == {"I02"} and "aVF" in table.attrs["rejects"]["I02"]
    # every lead's spike sits at the QRS index 250 with its own sign: leads are not mixed up
    for k, lead in enumerate(STANDARD_12):
        sign = np.sign(_amplitude(lead))
        assert (np.argmax(sign * x[:, k, :], axis=1) == 250).all(), lead
    ratio = x[:, :, 250] / np.array([_amplitude(lead) for lead in STANDARD_12])
    assert np.allclose(ratio, ratio[:, :1], rtol=0.05)  # same band-pass gain on every lead

    singles, names = incart.per_lead(x, incart.LEADS)
    y = np.tile(table["label"].to_numpy(), len(incart.LEADS))
    assert singles.shape == (12 * len(keep), 1, 301) and len(names) == len(y)
    v1 = names == "V1"
    np.testing.assert_array_equal(singles[v1, 0], x[:, STANDARD_12.index("V1")])
    assert y[v1].tolist() == table["label"].tolist()


def test_lead_subset_and_class_choice(tmp_path):
    _write_record(tmp_path, "I03", HEADER_LEADS)
    x, table = incart.incart_nv_beats(tmp_path, ["I03"], leads=("II", "V1"), classes=("V",))
    assert x.shape == (len([s for s in SYMBOLS if s in "VE"]), 2, 301)
    assert (table["label"] == 0).all() and set(table["aami"]) == {"V"}
    assert _amplitude("II") < 0 < _amplitude("V1")
    assert (np.argmin(x[:, 0], axis=1) == 250).all()  # II: negative spike
    assert (np.argmax(x[:, 1], axis=1) == 250).all()  # V1: positive spike
