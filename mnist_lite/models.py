"""The models: step 1's plain net, and the one skeleton of steps 2 to 5 as plain data.

Step 1 is a plain convolutional net that only has to prove the pipeline works. Steps 2 to 5
share one skeleton, a ``LiteNet``, described by a frozen ``config.Lite`` that the
step's recipe holds and ``result.json`` records:

* step 2: convolutions, one max-pool, global average pooling (GAP) and a 1x1 classifier
  instead of a dense head (``batch_norm=False``);
* steps 3 and 4: BatchNorm after every convolution (step 4 changes the schedule, not the model);
* step 5: a cheaper skeleton (one convolution at full resolution, no 1x1 transition, the last
  convolution dilated by 2) with a little channel-wise dropout after every convolution; its
  augmentation, batch size and test-time shifts are in its recipe, not in the model.

:func:`layer_table` computes each block's shape, receptive field, parameters and
multiply-adds from the modules themselves.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from mnist_lite.config import ACTIVATIONS, Lite


class BaselineNet(nn.Module):
    """Step 1: two convolutions, each followed by a max-pool, and a two-layer dense head.

    Receptive field 10x10 at the last pool; 56,714 parameters, most of them in the dense head.
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU()),  # 28 -> 26
                pool1=nn.MaxPool2d(2),  # 26 -> 13
                conv2=nn.Sequential(nn.Conv2d(16, 32, 3), nn.ReLU()),  # 13 -> 11
                pool2=nn.MaxPool2d(2),  # 11 -> 5
                flatten=nn.Flatten(),
                dense=nn.Sequential(nn.Linear(32 * 5 * 5, 64), nn.ReLU()),
                classifier=nn.Linear(64, 10),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


ACTIVATION_MODULES = dict(zip(ACTIVATIONS, (nn.ReLU, nn.SiLU), strict=True))  # by Lite.activation


class LiteNet(nn.Module):
    """The skeleton of steps 2 to 5, built from a :class:`~mnist_lite.config.Lite` config."""

    def __init__(self, config: Lite):
        super().__init__()
        self.config = config
        blocks, channels = OrderedDict(), 1
        for i, width in enumerate(config.full_resolution, start=1):
            blocks[f"conv{i}"] = self.block(channels, width, padding=config.padding)
            channels = width
        blocks["pool"] = nn.MaxPool2d(2)
        if config.transition:
            blocks["transition"] = self.block(channels, config.transition, kernel_size=1)
            channels = config.transition
        first_dilated = len(config.full_resolution) + len(config.low_resolution) - config.dilated + 1
        for i, width in enumerate(config.low_resolution, start=len(config.full_resolution) + 1):
            blocks[f"conv{i}"] = self.block(channels, width, dilation=2 if i >= first_dilated else 1)
            channels = width
            if i == len(config.full_resolution) + config.second_pool:
                blocks["pool2"] = nn.MaxPool2d(2)
        blocks["gap"] = nn.AdaptiveAvgPool2d(1)
        blocks["classifier"] = nn.Conv2d(channels, 10, 1)
        blocks["flatten"] = nn.Flatten()
        self.features = nn.Sequential(blocks)

    def block(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 0, dilation: int = 1
    ) -> nn.Sequential:
        """Convolution (depthwise-separable where the config says so), [BatchNorm,] the activation
        (ReLU or SiLU)[, Dropout2d]."""
        batch_norm, dropout = self.config.batch_norm, self.config.dropout
        spatial = dict(kernel_size=kernel_size, padding=padding, dilation=dilation)
        if self.config.separable and kernel_size > 1 and in_channels > 1:
            depthwise = nn.Conv2d(in_channels, in_channels, **spatial, groups=in_channels, bias=False)
            layers = [depthwise, nn.Conv2d(in_channels, out_channels, 1, bias=not batch_norm)]
        else:
            layers = [nn.Conv2d(in_channels, out_channels, **spatial, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(ACTIVATION_MODULES[self.config.activation]())
        if dropout:
            layers.append(nn.Dropout2d(dropout))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # the block's first module, e.g. Conv2d
    description: str  # every module of the block, e.g. "conv 3x3 pad 1, BN, ReLU"
    out_shape: tuple[int, ...]  # (channels, height, width) or (features,)
    receptive_field: int  # in input pixels; 28 or more means the whole image
    params: int
    multiply_adds: int  # per image, of the block's convolutions and dense layers


def describe(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        k, pad, dilation = module.kernel_size[0], module.padding[0], module.dilation[0]
        depthwise = "depthwise " if module.groups == module.in_channels > 1 else ""
        return (
            f"{depthwise}conv {k}x{k}"
            + (f" pad {pad}" if pad else "")
            + (f" dilation {dilation}" if dilation > 1 else "")
        )
    if isinstance(module, (nn.Dropout, nn.Dropout2d)):
        return f"{type(module).__name__} {module.p:g}"
    names = {
        nn.BatchNorm2d: "BN",
        nn.MaxPool2d: "max-pool 2x2",
        nn.AdaptiveAvgPool2d: "GAP",
        nn.Linear: "dense",
    }
    return names.get(type(module), type(module).__name__)


def _size(value) -> int:
    return value if isinstance(value, int) else value[0]


def layer_table(model: nn.Module) -> list[Layer]:
    """Each named block of ``model.features``: output shape, receptive field, parameters and
    multiply-adds per image.

    Shapes come from a forward pass of one blank image. The receptive field grows by
    (k - 1) * dilation * jump for a kernel of size k, and the jump by its stride; global average pooling
    is a kernel as large as its input, so after it every output sees the whole image.
    """
    rows, x = [], torch.zeros(1, 1, 28, 28)
    rf, jump = 1, 1
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for name, module in model.features.named_children():
            parts = list(module) if isinstance(module, nn.Sequential) else [module]
            multiply_adds = 0
            for layer in parts:
                y = layer(x)
                if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                    k, s, d = _size(layer.kernel_size), _size(layer.stride), _size(layer.dilation)
                    rf, jump = rf + (k - 1) * d * jump, jump * s
                elif isinstance(layer, nn.AdaptiveAvgPool2d):
                    rf += (x.shape[-1] - 1) * jump
                if isinstance(layer, nn.Conv2d):
                    multiply_adds += (
                        y.numel() * layer.in_channels * _size(layer.kernel_size) ** 2 // layer.groups
                    )
                elif isinstance(layer, nn.Linear):
                    multiply_adds += layer.in_features * layer.out_features
                x = y
            rows.append(
                Layer(
                    name,
                    type(parts[0]).__name__,
                    ", ".join(describe(part) for part in parts),
                    tuple(x.shape[1:]),
                    rf,
                    count_parameters(module),
                    multiply_adds,
                )
            )
    model.train(was_training)
    return rows


def multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of one forward pass of one image."""
    return sum(row.multiply_adds for row in layer_table(model))
