"""Where things are: the one home of the project's paths.

mnist-lite runs from a clone of its repository and also installed (``pip install .``), where
the package sits in ``site-packages`` with no repository beside it. Only what ships inside the
package may be relied on: the SHA-256 digests of MNIST (they identify the data whichever folder
it comes from). The data itself and the recorded results belong to a checkout, or to the
folder the user names.
"""

from __future__ import annotations

import os
from pathlib import Path

# also in pyproject's [project.urls] and each notebook's first cell (tests check they agree)
REPOSITORY = "https://github.com/mnist-lite/mnist-lite"
PACKAGE = Path(__file__).resolve().parent
CHECKSUMS = PACKAGE / "SHA256SUMS"  # package data: installed with the code
DATA_ENV = "MNIST_LITE_DATA"  # the variable naming a data folder, like --data-dir


def find_checkout(package: Path) -> Path | None:
    """The repository ``package`` was imported from, or None when it is installed without one.

    A checkout is recognised by its ``pyproject.toml`` and ``data/`` beside the package.
    """
    root = package.parent
    return root if (root / "pyproject.toml").is_file() and (root / "data").is_dir() else None


REPO = find_checkout(PACKAGE)
RESULTS = REPO / "results" if REPO else None  # the recorded runs the README and notebooks show
# folders under RESULTS, one name each for the command that writes them and the report that reads them
SEED_SWEEPS = "step{step}_seeds"  # `seeds --step N`
DESIGN = "design"  # tools/design.py: DESIGN/VARIANT/seedS.json, scored on the validation split
DESIGN_GPU = "design_gpu"  # the same, for the round run on a GPU (tools/design.py --folder design_gpu)
DESIGN_XEON = "design_xeon"  # the same, for round 11, on an Intel Xeon (--folder design_xeon)
ONE_EPOCH = "one_epoch_5000"  # tools/one_epoch.py
PRECISE_BN = "precise_bn"  # tools/precise_bn.py: PRECISE_BN/seedS.json, scored on the validation split
TTA = "tta"  # tools/tta.py: TTA/seedS.json, scored on the validation split
TTA_TEST = "tta_test"  # tools/tta.py --on-test: TTA_TEST/seedS.json, scored on the test set
TTA_STEP5 = "tta_step5"  # tools/tta.py --step5: step 5's recipe since round 18, on the validation split
DESIGN_SPEED = "design_speed.json"  # tools/design.py --time: the recorded variants, on one machine
FRONTIER_SPEED = "frontier/speed.json"  # tools/design.py --time NAME NAME: frontier points, a run per machine


def default_data_dir() -> Path | None:
    """``$MNIST_LITE_DATA`` if set, else the checkout's ``data/``; None when there is neither."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return REPO / "data" if REPO else None


def in_checkout(relative: str, option: str = "--out") -> Path:
    """``relative`` inside the checkout: the default of a command that writes the project's record.
    Installed without a checkout, there is no such default, and the user must name the path."""
    if REPO is None:
        from mnist_lite.errors import MnistLiteError

        raise MnistLiteError(f"no repository checkout here to hold {relative}; pass {option} PATH")
    return REPO / relative
