"""Progress bars (tqdm) for long work, drawn on stderr and only where a person is watching."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False) -> tqdm:
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
        disable=True if disable else None,
        mininterval=0.2,
    )
