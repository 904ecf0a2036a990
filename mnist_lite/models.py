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
    """Step 1: three convolutions, two max-pools and a dense classifier.

    Receptive field 14x14 at the last convolution; 39,298 parameters.
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU()),  # 28 -> 26
                conv2=nn.Sequential(nn.Conv2d(16, 32, 3), nn.ReLU()),  # 26 -> 24
                pool1=nn.MaxPool2d(2),  # 24 -> 12
                conv3=nn.Sequential(nn.Conv2d(32, 64, 3), nn.ReLU()),  # 12 -> 10
                pool2=nn.MaxPool2d(2),  # 10 -> 5
                flatten=nn.Flatten(),
                classifier=nn.Linear(64 * 5 * 5, 10),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class LiteNet(nn.Module):
    """The skeleton of steps 2 to 5; subclasses set ``batch_norm`` and ``dropout``.

    Two 3x3 convolutions at full resolution, a max-pool and a 1x1 convolution that narrows
    the channels again, three more 3x3 convolutions, then GAP and a 1x1 classifier. No
    padding: every 3x3 convolution trims the border, where MNIST has nothing.
    """

    batch_norm = False
    dropout = 0.0  # channel-wise (Dropout2d): as regularising as element-wise here, and far cheaper
    channels = (8, 12, 8, 12, 14, 14, 16)  # conv1, conv2, transition, conv3, conv4, conv5, conv6

    def block(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
        """Convolution, [BatchNorm,] ReLU[, Dropout]."""
        layers = [nn.Conv2d(in_channels, out_channels, kernel_size, bias=not self.batch_norm)]
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
                conv1=self.block(1, c1),  # 28 -> 26
                conv2=self.block(c1, c2),  # 26 -> 24
                pool=nn.MaxPool2d(2),  # 24 -> 12
                transition=self.block(c2, transition, kernel_size=1),
                conv3=self.block(transition, c3),  # 12 -> 10
                conv4=self.block(c3, c4),  # 10 -> 8
                conv5=self.block(c4, c5),  # 8 -> 6
                conv6=self.block(c5, c6),  # 6 -> 4
                gap=nn.AdaptiveAvgPool2d(1),
                classifier=nn.Conv2d(c6, 10, 1),
                flatten=nn.Flatten(),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class SkeletonNet(LiteNet):
    """Step 2: the skeleton with GAP, no normalisation.

    Receptive field 18x18 at the last convolution, 6x6 feature maps into GAP; 6,440 parameters.
    """


class BatchNormNet(LiteNet):
    """Steps 3 and 4: the skeleton with BatchNorm after every convolution.

    Receptive field 18x18 at the last convolution; 6,508 parameters.
    """

    batch_norm = True


class DropoutNet(BatchNormNet):
    """Step 5: BatchNorm and dropout after every convolution.

    Receptive field 18x18 at the last convolution; 6,508 parameters.
    """

    dropout = 0.05


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    out_shape: tuple[int, ...]  # (channels, height, width) or (features,)
    receptive_field: int
    params: int


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
            kind = type(module[0] if isinstance(module, nn.Sequential) else module).__name__
            rows.append(Layer(name, kind, tuple(x.shape[1:]), rf, count_parameters(module)))
    model.train(was_training)
    return rows
