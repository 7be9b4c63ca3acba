import os
from pathlib import Path

import pytest
import torch

# Tests run two per machine (pytest -n 2 on 2 cores): one intra-op thread each avoids oversubscription.
torch.set_num_threads(1)

# The shared prompt corpora live beside the checkout (`../shared/data`), as in CI; MOKSORI_SHARED_DATA
# points elsewhere. Tests that read them skip, saying where they looked, when they are absent.
SHARED_DATA = Path(os.environ.get("MOKSORI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared corpora not found at {SHARED_DATA} (set MOKSORI_SHARED_DATA)")
    return SHARED_DATA
