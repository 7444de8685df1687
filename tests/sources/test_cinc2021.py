"""CinC 2021 loader on records the test writes in the Challenge's own format (MATLAB v4 signal,
``16+24`` header, nested ``training/<source>/g1`` folders), made from real PTB-XL signals."""

from __future__ import annotations

import numpy as np
import pytest

from ecglatent.datasets.single_lead import ptbxl_multilead_beats
from ecglatent.sources import cinc2021, ptbxl
from ecglatent.sources.leads import STANDARD_12
from ecglatent.sources.records import read_record, to_standard_12
from tests.conftest import write_cinc_record

# the Challenge's header order is standard, but a reader must not rely on it
SHUFFLED = ["V1", "V2", "V3", "V4", "V5", "V6", "I", "II", "III", "aVR", "aVL", "aVF"]
COMMENTS = ["Age: 56", "Sex: Female", "Dx: 426783006,164934002", "Rx: Unknown", "Hx: Unknown"]


def _ptbxl(mirror, ecg_id: int):
    root = mirror / "ptb-xl"
    row = ptbxl.read_database(root).loc[ecg_id]
    return to_standard_12(read_record(ptbxl.record_path(root, row, 500)))


@pytest.fixture
def challenge(tmp_path, mirror):
    """training/georgia/g1/E00001 (PTB-XL 1, leads shuffled), E00002 (PTB-XL 2, V6 missing),
    E00003 (3 s, too short); training/ptb-xl/g1/HR00003 (PTB-XL 3); training/cpsc_2018/g1/A0001
    (PTB-XL 4, with a truncated signal file)."""
    root = tmp_path / "challenge-2021"
    geo = root / "training/georgia/g1"
    r1 = _ptbxl(mirror, 1)
    order = [STANDARD_12.index(lead) for lead in SHUFFLED]
    write_cinc_record(geo, "E00001", r1.signal[order], 500, SHUFFLED, COMMENTS)
    r2 = _ptbxl(mirror, 2)
    write_cinc_record(geo, "E00002", r2.signal[:11], 500, STANDARD_12[:11], ["Age: NaN"])
    write_cinc_record(geo, "E00003", r1.signal[:, :1500], 500, STANDARD_12)
    write_cinc_record(root / "training/ptb-xl/g1", "HR00003", _ptbxl(mirror, 3).signal, 500,
                      STANDARD_12)  # fmt: skip
    cpsc = write_cinc_record(root / "training/cpsc_2018/g1", "A0001", _ptbxl(mirror, 4).signal,
                             500, STANDARD_12)  # fmt: skip
    mat = cpsc.with_suffix(".mat")
    mat.write_bytes(mat.read_bytes()[: 24 + 12 * 2 * 1000])  # 2 s of the 10 declared
    return root


def test_lists_nested_records_and_their_sources(challenge):
    records = cinc2021.list_records(challenge)
    assert records == [
        "training/cpsc_2018/g1/A0001",
        "training/georgia/g1/E00001",
        "training/georgia/g1/E00002",
        "training/georgia/g1/E00003",
        "training/ptb-xl/g1/HR00003",
    ]
    assert [cinc2021.source_of(r) for r in records] == [
        "cpsc_2018", "georgia", "georgia", "georgia", "ptb-xl"]  # fmt: skip


def test_reads_the_matlab_signal_in_standard_lead_order(challenge, mirror):
    rec = cinc2021.read_cinc(challenge, "training/georgia/g1/E00001")
    truth = _ptbxl(mirror, 1)
    assert rec.leads == STANDARD_12 and rec.fs == 500
    # int16 at 1000 units per mV: within half a µV of the source
    np.testing.assert_allclose(rec.signal, truth.signal, atol=5e-4 + 1e-9)


def test_header_labels(challenge):
    info = cinc2021.header_info(challenge, "training/georgia/g1/E00001")
    assert info == cinc2021.HeaderInfo(56.0, "Female", ("426783006", "164934002"))
    assert cinc2021.header_info(challenge, "training/georgia/g1/E00002").age is None


def test_beats_rejects_and_caps(challenge, mirror):
    x, table = cinc2021.cinc_multilead_beats(challenge)
    assert x.dtype == np.float32 and x.shape == (len(table), 12, 301)
    assert set(table["record"]) == {"training/georgia/g1/E00001", "training/ptb-xl/g1/HR00003"}
    rejects = table.attrs["rejects"]
    assert set(rejects) == {
        "training/georgia/g1/E00002",
        "training/georgia/g1/E00003",
        "training/cpsc_2018/g1/A0001",
    }
    assert "V6" in rejects["training/georgia/g1/E00002"]
    assert "too short" in rejects["training/georgia/g1/E00003"]
    assert "cannot read signal" in rejects["training/cpsc_2018/g1/A0001"]

    # the same signal through the PTB-XL path gives the same beats
    xp, tp = ptbxl_multilead_beats(mirror / "ptb-xl", [1])
    mine = (table["record"] == "training/georgia/g1/E00001").to_numpy()
    np.testing.assert_array_equal(table.loc[mine, "sample"], tp["sample"])
    np.testing.assert_allclose(x[mine], xp, atol=2e-3)

    skipped, st = cinc2021.cinc_multilead_beats(challenge, skip_sources=["ptb-xl"])
    assert set(st["source"]) == {"georgia"} and len(skipped) == mine.sum()

    capped, ct = cinc2021.cinc_multilead_beats(challenge, max_beats_per_record=3)
    assert ct.groupby("record").size().tolist() == [3, 3]
    first = ct[ct["record"] == "training/georgia/g1/E00001"]["sample"].to_numpy()
    all_peaks = table.loc[mine, "sample"].to_numpy()
    assert first[0] == all_peaks[0] and first[-1] == all_peaks[-1]  # evenly spread, ends kept


def test_incart_copy_never_enters_pretraining(challenge, mirror):
    """The Challenge's st_petersburg_incart records are INCART's test signals: always left out."""
    write_cinc_record(challenge / "training/st_petersburg_incart/g1", "I0001",
                      _ptbxl(mirror, 5).signal, 500, STANDARD_12)  # fmt: skip
    assert "training/st_petersburg_incart/g1/I0001" in cinc2021.list_records(challenge)
    x, table = cinc2021.cinc_multilead_beats(challenge)
    assert "st_petersburg_incart" not in set(table["source"])
    assert table.attrs["excluded"] == ["training/st_petersburg_incart/g1/I0001"]
    assert len(x) == len(table) and len(table) > 0
