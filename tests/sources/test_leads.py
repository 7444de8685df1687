from ecglatent.sources.leads import STANDARD_12, normalise_lead, standard_order


def test_normalise_spellings():
    assert normalise_lead("i") == "I"
    assert normalise_lead("MLII") == "II"
    assert normalise_lead("AVR") == "aVR"
    assert normalise_lead(" avf ") == "aVF"
    assert normalise_lead("v5") == "V5"
    assert normalise_lead("X7") is None


def test_standard_order_reorders_shuffled_leads():
    shuffled = list(reversed([name.upper() for name in STANDARD_12]))
    order = standard_order(shuffled)
    assert [shuffled[i] for i in order] == [n.upper() for n in STANDARD_12]


def test_standard_order_names_the_problem():
    assert "unknown lead" in standard_order(list(STANDARD_12[:11]) + ["X7"])
    assert "missing standard lead(s) ['V6']" in standard_order(list(STANDARD_12[:11]))
    assert "more than once" in standard_order(list(STANDARD_12) + ["I"])


def test_more_spellings():
    assert [normalise_lead(n) for n in ("DI", "DII", "dIII", "Lead aVR", "LEAD_V1", "ML2")] == [
        "I", "II", "III", "aVR", "V1", "II"
    ]  # fmt: skip


def test_split_standard_12_names_the_extra_leads():
    from ecglatent.sources.leads import split_standard_12

    leads = ["vx", *[n.lower() for n in STANDARD_12], "II", "vy"]
    order, extras = split_standard_12(leads)
    assert [leads[i] for i in order] == [n.lower() for n in STANDARD_12]
    assert extras == ["vx", "II", "vy"]  # a rhythm-strip copy of II is an extra too
    assert "['V6']" in split_standard_12(list(STANDARD_12[:11]) + ["vx"])
