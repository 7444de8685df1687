"""Lead names: normalise the many spellings found in WFDB headers to the standard ones."""

from __future__ import annotations

STANDARD_12: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip

# Spellings seen in PhysioNet headers; keys are upper-cased with spaces/dashes removed.
_ALIASES: dict[str, str] = {
    "MLI": "I",
    "MLII": "II",
    "MLIII": "III",
    "LEADI": "I",
    "LEADII": "II",
    "LEADIII": "III",
    "D1": "I",
    "D2": "II",
    "D3": "III",
    "DI": "I",
    "DII": "II",
    "DIII": "III",
    "ML1": "I",
    "ML2": "II",
    "ML3": "III",
}
_CANONICAL = {name.upper(): name for name in STANDARD_12}


def normalise_lead(name: str) -> str | None:
    """Standard name for a header lead name (``i`` → ``I``, ``MLII`` → ``II``, ``AVR`` → ``aVR``).

    Returns None when the name is not one of the 12 standard leads.
    """
    key = name.strip().upper().replace(" ", "").replace("-", "").replace("_", "")
    if key.startswith("LEAD") and len(key) > 4:  # "Lead I", "LEAD_aVR"
        key = key[4:]
    if key in _CANONICAL:
        return _CANONICAL[key]
    return _ALIASES.get(key)


def standard_order(leads: list[str] | tuple[str, ...]) -> list[int] | str:
    """Indices that put ``leads`` into the standard 12-lead order, or the reason it cannot.

    A record must carry each of the 12 standard leads exactly once; unknown names are named
    in the reason so the rejects file tells the user what to fix.
    """
    normalised = [normalise_lead(lead) for lead in leads]
    unknown = [raw for raw, norm in zip(leads, normalised, strict=True) if norm is None]
    if unknown:
        return f"unknown lead name(s) {unknown}; expected the 12 standard leads {list(STANDARD_12)}"
    duplicated = sorted({n for n in normalised if normalised.count(n) > 1})  # type: ignore[arg-type]
    if duplicated:
        return f"lead(s) {duplicated} appear more than once"
    missing = [lead for lead in STANDARD_12 if lead not in normalised]
    if missing:
        return f"missing standard lead(s) {missing}"
    return [normalised.index(lead) for lead in STANDARD_12]


def split_standard_12(leads: list[str] | tuple[str, ...]) -> tuple[list[int], list[str]] | str:
    """Indices of the 12 standard leads in standard order, and the names of the other leads.

    For recordings that carry more than the 12 (Frank ``vx vy vz``, a rhythm-strip copy of
    lead II): the first lead of each standard name is used, every other lead is an extra.
    Returns the reason instead when a standard lead is missing.
    """
    normalised = [normalise_lead(str(lead)) for lead in leads]
    order: list[int] = []
    missing = []
    for lead in STANDARD_12:
        if lead in normalised:
            order.append(normalised.index(lead))
        else:
            missing.append(lead)
    if missing:
        return f"missing standard lead(s) {missing} (the record has {list(leads)})"
    used = set(order)
    return order, [str(leads[i]) for i in range(len(leads)) if i not in used]
