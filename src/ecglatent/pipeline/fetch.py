"""`fetch` stage: PTB-XL / MIT-BIH / INCART / CinC 2021 into data/raw/<db>/ in PhysioNet's layout."""

from __future__ import annotations

import csv
import logging
import shutil
import tempfile
from pathlib import Path

from ecglatent.config import Params
from ecglatent.errors import EcglatentError
from ecglatent.sources import cinc2021, mitdb, physionet, ptbxl

log = logging.getLogger(__name__)


def run_fetch(params: Params) -> dict[str, int]:
    """Fill ``data.raw_dir`` with every database in ``data.databases``; returns record counts."""
    mirror = params.data.mirror_dir()
    raw = Path(params.data.raw_dir)
    counts: dict[str, int] = {}
    for db in params.data.databases:
        dst = raw / db
        # Build in a temp folder and swap, so an interrupted fetch never leaves half a database.
        raw.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{db}-", dir=raw))
        try:
            if db == "ptb-xl":
                counts[db] = _fetch_ptbxl(params, mirror, tmp)
            elif db == cinc2021.DATABASE:
                counts[db] = _fetch_cinc2021(params, mirror, tmp)
            else:
                counts[db] = _fetch_wfdb_db(params, db, mirror, tmp)
            if dst.exists():
                shutil.rmtree(dst)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(tmp), dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        where = f"mirror {mirror / db}" if mirror else "PhysioNet"
        log.info("fetch: %s: %d records from %s into %s", db, counts[db], where, dst)
    return counts


def _source(mirror: Path | None, db: str) -> Path | None:
    if mirror is None:
        return None
    src = mirror / db
    if not src.is_dir():
        raise EcglatentError(
            f"mirror {mirror} has no {db}/ folder: add it, or remove '{db}' from data.databases "
            f"in params.yaml"
        )
    return src


def _fetch_ptbxl(params: Params, mirror: Path | None, dst: Path) -> int:
    version = params.data.physionet_versions.get("ptb-xl", "1.0.3")
    src = _source(mirror, "ptb-xl")
    if src is None:
        physionet.download_files("ptb-xl", version, dst, list(physionet.PTBXL_META[:2]))
    else:
        for name in physionet.PTBXL_META:
            if (src / name).exists():
                shutil.copyfile(src / name, dst / name)
    table = physionet.select_ptbxl(
        ptbxl.read_database(dst if src is None else src), params.data.subset
    )
    files = physionet.ptbxl_files(table, params.data.ptbxl_rate)
    if src is None:
        physionet.download_files("ptb-xl", version, dst, files)
    else:
        physionet.copy_files(src, dst, files)
    # Keep the database table consistent with the records actually fetched.
    raw = _read_raw_csv(dst / ptbxl.DATABASE_CSV if src is None else src / ptbxl.DATABASE_CSV)
    keep = {str(i) for i in table.index}
    _write_raw_csv(dst / ptbxl.DATABASE_CSV, raw[0], [r for r in raw[1] if r[0] in keep])
    return len(table)


def _fetch_wfdb_db(params: Params, db: str, mirror: Path | None, dst: Path) -> int:
    version = params.data.physionet_versions.get(db, "1.0.0")
    src = _source(mirror, db)
    if src is None:
        physionet.download_files(db, version, dst, ["RECORDS"])
        records = mitdb.list_records(dst)
    else:
        records = mitdb.list_records(src)
    if not records:
        raise EcglatentError(f"no records found for {db} in {src or 'PhysioNet'}")
    records = physionet.select_records(records, params.data.subset)
    files = physionet.wfdb_db_files(records)
    if src is None:
        physionet.download_files(db, version, dst, files)
    else:
        physionet.copy_files(src, dst, files)
    (dst / "RECORDS").write_text("\n".join(records) + "\n")
    return len(records)


def _fetch_cinc2021(params: Params, mirror: Path | None, dst: Path) -> int:
    """Copy the Challenge's records (header + signal file) from the mirror, keeping its layout."""
    db = cinc2021.DATABASE
    if mirror is None:
        raise EcglatentError(
            f"{db} is published as one archive, not record by record: {cinc2021.DOWNLOAD_HINT}"
        )
    src = _source(mirror, db)
    records = physionet.select_records(cinc2021.list_records(src), params.data.subset)
    if not records:
        raise EcglatentError(f"no .hea records under {src}: {cinc2021.DOWNLOAD_HINT}")
    files = []
    for rec in records:
        signal = next((rec + ext for ext in (".mat", ".dat") if (src / (rec + ext)).exists()), None)
        if signal is None:
            raise EcglatentError(f"{src / rec}.hea has no .mat or .dat signal file next to it")
        files += [rec + ".hea", signal]
    physionet.copy_files(src, dst, files)
    return len(records)


def _read_raw_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def _write_raw_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
