"""One model per idea of the series.

Step 1 is a plain convolutional net that only has to prove the pipeline works. Steps 2 to 5
share one skeleton, a ``LiteNet``, and each later class switches on the one thing its step
adds, so its source is the step's whole change:

* ``SkeletonNet`` (step 2): convolutions, one max-pool with a 1x1 transition, global average
  pooling (GAP) and a 1x1 classifier instead of a dense head.
* ``BatchNormNet`` (steps 3 and 4; step 4 changes the schedule, not the model): BatchNorm
  after every convolution.
* ``DropoutNet`` (step 5): a little dropout after the convolutions as well.

The receptive fields and parameter counts in the docstrings are checked by the tests
against :func:`layer_table`, which computes them from the modules.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn


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


class LiteNet(nn.Module):
    """The skeleton of steps 2 to 5; subclasses set ``batch_norm`` and ``dropout``.

    Two 3x3 convolutions at full resolution (padded, so they keep 28x28), a max-pool and a
    1x1 convolution that narrows the channels again, four more 3x3 convolutions without
    padding (each trims the border, where the maps have little left), then GAP over the last
    6x6 maps and a 1x1 classifier.
    """

    batch_norm = False
    dropout = 0.0  # channel-wise (Dropout2d): as regularising as element-wise here, and far cheaper
    channels = (8, 16, 8, 12, 14, 14, 16)  # conv1, conv2, transition, conv3, conv4, conv5, conv6
    padding = 1  # of conv1 and conv2: they see the whole 28x28 image, border strokes included

    def block(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 0) -> nn.Sequential:
        """Convolution, [BatchNorm,] ReLU[, Dropout]."""
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=not self.batch_norm)]
        if self.batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU())
        if self.dropout:
            layers.append(nn.Dropout2d(self.dropout))
        return nn.Sequential(*layers)

    def __init__(self):
        super().__init__()
        c1, c2, transition, c3, c4, c5, c6 = self.channels
        self.features = nn.Sequential(
            OrderedDict(
                conv1=self.block(1, c1, padding=self.padding),  # 28 -> 28
                conv2=self.block(c1, c2, padding=self.padding),  # 28 -> 28
                pool=nn.MaxPool2d(2),  # 28 -> 14
                transition=self.block(c2, transition, kernel_size=1),
                conv3=self.block(transition, c3),  # 14 -> 12
                conv4=self.block(c3, c4),  # 12 -> 10
                conv5=self.block(c4, c5),  # 10 -> 8
                conv6=self.block(c5, c6),  # 8 -> 6
                gap=nn.AdaptiveAvgPool2d(1),
                classifier=nn.Conv2d(c6, 10, 1),
                flatten=nn.Flatten(),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class SkeletonNet(LiteNet):
    """Step 2: the skeleton with GAP, no normalisation.

    Receptive field 22x22 at the last convolution, 6x6 feature maps into GAP; 7,766 parameters.
    """


class BatchNormNet(LiteNet):
    """Steps 3 and 4: the skeleton with BatchNorm after every convolution.

    Receptive field 22x22 at the last convolution; 7,854 parameters.
    """

    batch_norm = True


class DropoutNet(BatchNormNet):
    """Step 5: BatchNorm and light channel-wise dropout after every convolution.

    Receptive field 22x22 at the last convolution; 7,854 parameters.
    """

    dropout = 0.02


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # the block's first module, e.g. Conv2d
    description: str  # every module of the block, e.g. "conv 3x3 pad 1, BN, ReLU"
    out_shape: tuple[int, ...]  # (channels, height, width) or (features,)
    receptive_field: int
    params: int


def describe(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        k, pad = module.kernel_size[0], module.padding[0]
        return f"conv {k}x{k}" + (f" pad {pad}" if pad else "")
    if isinstance(module, (nn.Dropout, nn.Dropout2d)):
        return f"{type(module).__name__} {module.p:g}"
    names = {nn.BatchNorm2d: "BN", nn.MaxPool2d: "max-pool 2x2", nn.AdaptiveAvgPool2d: "GAP", nn.Linear: "dense"}
    return names.get(type(module), type(module).__name__)


def layer_table(model: nn.Module) -> list[Layer]:
    """Each named block of ``model.features``: output shape, receptive field and parameters.

    Shapes come from a forward pass of one blank image; the receptive field from the kernel
    sizes and strides (r grows by (k - 1) * jump, jump by the stride).
    """
    rows, x = [], torch.zeros(1, 1, 28, 28)
    rf, jump = 1, 1
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for name, module in model.features.named_children():
            x = module(x)
            for layer in module.modules():
                if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                    k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
                    s = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
                    rf, jump = rf + (k - 1) * jump, jump * s
            parts = list(module) if isinstance(module, nn.Sequential) else [module]
            rows.append(
                Layer(
                    name,
                    type(parts[0]).__name__,
                    ", ".join(describe(part) for part in parts),
                    tuple(x.shape[1:]),
                    rf,
                    count_parameters(module),
                )
            )
    model.train(was_training)
    return rows
