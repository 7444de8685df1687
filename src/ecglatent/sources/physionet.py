"""Getting databases in PhysioNet's layout: from a local mirror folder or from PhysioNet."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ecglatent.errors import EcglatentError
from ecglatent.sources import ptbxl

log = logging.getLogger(__name__)
WFDB_EXTENSIONS = (".hea", ".dat", ".atr")
PTBXL_META = (ptbxl.DATABASE_CSV, ptbxl.SCP_CSV, "LICENSE.txt")


def ptbxl_files(table: pd.DataFrame, rate: int) -> list[str]:
    """Relative paths of the PTB-XL record files at ``rate`` for the rows of ``table``."""
    column = "filename_hr" if rate == 500 else "filename_lr"
    return [f"{name}{ext}" for name in table[column] for ext in (".hea", ".dat")]


def wfdb_db_files(records: Iterable[str]) -> list[str]:
    return [f"{rec}{ext}" for rec in records for ext in WFDB_EXTENSIONS]


def copy_files(src_root: Path, dst_root: Path, files: Iterable[str]) -> int:
    """Copy ``files`` (relative paths) keeping the layout; a missing one stops with its path."""
    n = 0
    for rel in files:
        src = src_root / rel
        if not src.exists():
            raise EcglatentError(
                f"{src} is missing from the mirror: complete the mirror or lower data.subset"
            )
        dst = dst_root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        n += 1
    return n


def download_files(db: str, version: str, dst_root: Path, files: list[str]) -> None:
    """Download ``files`` of PhysioNet database ``db``/``version`` into ``dst_root``."""
    import wfdb

    try:
        wfdb.dl_files(f"{db}/{version}", str(dst_root), files, keep_subdirs=True, overwrite=False)
    except Exception as exc:
        raise EcglatentError(
            f"downloading {db} from PhysioNet failed ({type(exc).__name__}: {exc}); "
            f"without network access set ECGLATENT_DATA_MIRROR (or data.mirror) to a folder "
            f"holding {db}/ in PhysioNet's layout"
        ) from None


def select_ptbxl(table: pd.DataFrame, subset: int) -> pd.DataFrame:
    """The first ``subset`` records by ecg_id (all when 0)."""
    table = table.sort_index()
    return table.iloc[:subset] if subset else table


def select_records(records: list[str], subset: int) -> list[str]:
    return records[:subset] if subset else records
