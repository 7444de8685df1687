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
}
_CANONICAL = {name.upper(): name for name in STANDARD_12}


def normalise_lead(name: str) -> str | None:
    """Standard name for a header lead name (``i`` → ``I``, ``MLII`` → ``II``, ``AVR`` → ``aVR``).

    Returns None when the name is not one of the 12 standard leads.
    """
    key = name.strip().upper().replace(" ", "").replace("-", "").replace("_", "")
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
