"""What a recipe is made of, as plain frozen data: the model's shape and the augmentation.

Nothing here imports torch, so the command line can read the recipes (``--help``, argument
checks) at once; calling a model config builds the ``nn.Module`` (``mnist_lite.models``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

DEVICES = ("auto", "cpu", "cuda", "mps")  # auto: CUDA, else Apple's MPS, else the CPU
PRECISIONS = ("bfloat16", "float32")  # of the forward pass in training; "auto" picks one per device
LOADERS = ("fast", "torchvision")  # input pipelines (mnist_lite.data)
MAX_SEED = 2**63 - 1  # torch.manual_seed takes a signed 64-bit number
ACTIVATIONS = ("relu", "silu")  # a LiteNet's nonlinearity: ReLU, or SiLU (x times its sigmoid)
# the elastic field's blur, int(8 sigma + 1) taps as torchvision's, is reflected at the edges of a
# 28-pixel side, so its half-width int(8 sigma + 1) // 2 must stay under 28: 8 sigma + 1 < 2 * 28, so
# a sigma of this or more cannot blur an MNIST image
ELASTIC_SIGMA_LIMIT = (2 * 28 - 1) / 8


@dataclass(frozen=True)
class Augment:
    """Random rotation within ``±degrees``, shift within ``±translate`` of the image size and
    zoom by a factor within ``1 ± scale``, applied by ``mnist_lite.data`` to whole batches.

    ``elastic_alpha`` > 0 adds an elastic deformation after them (Simard et al., 2003), as
    torchvision's ``ElasticTransform(elastic_alpha, elastic_sigma)`` defines it: each pixel moves by
    a random field smoothed by a Gaussian of ``elastic_sigma`` pixels, times ``elastic_alpha / 2``
    pixels.
    """

    degrees: float = 0.0
    translate: float = 0.0
    scale: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 0.0

    def __post_init__(self) -> None:
        # whatever builds the recipe (a record read back, a design variant, the Python API): a sigma
        # out of range would fail only mid-training, in the blur's padding
        if not 0 <= self.elastic_sigma < ELASTIC_SIGMA_LIMIT:
            raise ValueError(f"elastic_sigma {self.elastic_sigma!r}: from 0 to below {ELASTIC_SIGMA_LIMIT}")

    def __bool__(self) -> bool:
        return bool(self.degrees or self.translate or self.scale or self.elastic_alpha)


@dataclass(frozen=True)
class Baseline:
    """Step 1's model: it has nothing to vary. Calling it builds the net."""

    name = "BaselineNet"

    def __call__(self):
        from mnist_lite.models import BaselineNet

        return BaselineNet()


@dataclass(frozen=True)
class Lite:
    """A ``LiteNet`` as plain data: what a recipe records, and what a design variant changes.

    3x3 convolutions at full resolution (``full_resolution`` channels, padded by ``padding``),
    a 2x2 max-pool, an optional 1x1 ``transition`` that narrows the channels again, 3x3
    convolutions without padding (``low_resolution`` channels; each trims the border), with a
    second 2x2 max-pool after the first ``second_pool`` of them if that is not 0, then global
    average pooling (GAP) and a 1x1 classifier; the last ``dilated`` of the low-resolution
    convolutions are dilated by 2. ``batch_norm`` and ``dropout``
    (channel-wise, ``Dropout2d``) follow every convolution, with the ``activation`` (one of
    ``ACTIVATIONS``) between them. Calling it builds the net.

    With ``separable``, every 3x3 convolution whose input has more than one channel is
    depthwise-separable: a 3x3 filter per input channel, then a 1x1 convolution that mixes them.
    It costs about ``1/out_channels + 1/9`` of the parameters of a full one, so the same budget
    buys wider layers.
    """

    full_resolution: tuple[int, ...] = (8, 16)
    padding: int = 1
    transition: int = 8  # 0: no 1x1 convolution after the pool
    low_resolution: tuple[int, ...] = (12, 14, 14, 16)
    second_pool: int = 0  # 0: one max-pool; n: another after the first n low_resolution convolutions
    dilated: int = 0  # the last n low_resolution convolutions dilated by 2: a 5x5 view for a 3x3's weights
    separable: bool = False
    batch_norm: bool = True
    dropout: float = 0.0
    activation: str = "relu"

    name = "LiteNet"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r}: one of {', '.join(ACTIVATIONS)}")
        # dilated convolutions come after any second pool, whose size arithmetic assumes 3x3 views
        if not 0 <= self.dilated <= len(self.low_resolution) - self.second_pool:
            raise ValueError(
                f"dilated={self.dilated}: at most the {len(self.low_resolution) - self.second_pool} "
                "low-resolution convolutions after any second pool"
            )

    def __call__(self):
        from mnist_lite.models import LiteNet

        return LiteNet(self)


MODELS = {config.name: config for config in (Baseline, Lite)}
# fields newer than some recorded architectures, at the value every record written before them had
ARCHITECTURE_FIELDS_ADDED = {
    "LiteNet": {"second_pool": 0, "separable": False, "dilated": 0, "activation": "relu"}
}


def model_to_dict(config: Baseline | Lite) -> dict:
    """The architecture a recipe records: the config's fields, tuples as lists.

    A field in ``ARCHITECTURE_FIELDS_ADDED`` is left out while it has the value that records
    written before it implied, so that the same net recorded before and after the field existed
    compares equal (runs are resumed and sweeps checked by comparing recorded recipes).
    """
    added = ARCHITECTURE_FIELDS_ADDED.get(config.name, {})
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in dataclasses.asdict(config).items()
        if key not in added or value != added[key]
    }


def model_from_dict(name: str, fields: dict) -> Baseline | Lite:
    """The model config that a recipe recorded as ``name`` and ``fields`` (``model_to_dict``)."""
    if name not in MODELS or not isinstance(fields, dict):
        raise ValueError(f"unknown model {name!r} or architecture {fields!r}")
    fields = {**ARCHITECTURE_FIELDS_ADDED.get(name, {}), **fields}
    expected = {field.name for field in dataclasses.fields(MODELS[name])}
    if set(fields) != expected:  # a default must not stand in for a value that was not recorded
        raise ValueError(f"architecture of {name}: fields {sorted(fields)}, expected {sorted(expected)}")
    return MODELS[name](
        **{key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()}
    )
