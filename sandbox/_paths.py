"""Where the data files live.

`fixtures/` and `scenarios/` sit at the top of the repository. A wheel carries them inside the package
as `sandbox/_data/…` (see `pyproject.toml`), so an installed sandbox used from any directory, or the
Docker image, finds them too.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    packaged = _HERE / "_data" / name
    return packaged if packaged.is_dir() else _HERE.parent / name


FIXTURES = _data_dir("fixtures")
SCENARIOS = _data_dir("scenarios")
