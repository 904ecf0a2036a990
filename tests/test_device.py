"""Where a run trains and in which precision: the device, its name and the bfloat16 choice."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mnist_lite import device as dev
from mnist_lite.config import DEVICES, PRECISIONS
from mnist_lite.device import DTYPES, autocast, device_name, has_native_bfloat16, pick_device, resolve_dtype
from mnist_lite.errors import MnistLiteError

CPU = torch.device("cpu")
CUDA = torch.device("cuda")  # a device object needs no GPU; only using it does


def test_pick_device_cpu_and_auto():
    assert pick_device("cpu") == CPU
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert pick_device("auto").type == expected  # the preference order: cuda, mps, cpu
    assert pick_device() == pick_device("auto") and set(DEVICES) == {"auto", "cpu", "cuda", "mps"}
    assert pick_device(CPU) is CPU  # a device already picked, as fit and the sweep may be given


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_pick_device_cuda_without_cuda():
    with pytest.raises(MnistLiteError, match="--device cuda: not available on this machine"):
        pick_device("cuda")
    assert pick_device("auto") != CUDA


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto").type == "mps" and pick_device("mps").type == "mps"


def test_pick_device_unknown_name():
    with pytest.raises(MnistLiteError, match="--device tpu: not available"):
        pick_device("tpu")


def test_dtypes_are_the_precisions():
    assert list(DTYPES) == list(PRECISIONS) == ["bfloat16", "float32"]
    assert DTYPES == {"bfloat16": torch.bfloat16, "float32": torch.float32}
    assert "auto" not in DTYPES  # a choice, resolved before a run records it


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bfloat16_exactly_where_the_device_has_it_natively(monkeypatch, native):
    monkeypatch.setattr(dev, "has_native_bfloat16", lambda device: native)
    assert resolve_dtype("auto", CPU) == ("bfloat16" if native else "float32")
    for name in PRECISIONS:  # a named precision is kept: bfloat16 without native support is emulated
        assert resolve_dtype(name, CPU) == name


def test_auto_on_this_machine_agrees_with_has_native_bfloat16():
    assert resolve_dtype("auto", CPU) == ("bfloat16" if has_native_bfloat16(CPU) else "float32")


@pytest.mark.parametrize("name", ["bf16", "float16", "", "AUTO"])
def test_an_unknown_precision_is_refused(name):
    with pytest.raises(MnistLiteError, match=f"dtype {name!r}: expected auto or one of bfloat16, float32"):
        resolve_dtype(name, CPU)


def test_bfloat16_on_a_cuda_card_without_it_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(MnistLiteError, match="--dtype bfloat16: Tesla T4 has no bfloat16; use float32"):
        resolve_dtype("bfloat16", CUDA)
    assert resolve_dtype("auto", CUDA) == "float32" and resolve_dtype("float32", CUDA) == "float32"


@pytest.mark.parametrize(
    "flags, native",
    [
        ({"avx2", "avx512f", "avx512_bf16"}, True),
        ({"avx2", "avx512f", "amx_tile", "amx_bf16"}, True),
        ({"avx2", "avx512f"}, False),  # AVX-512 without its BF16 extension
        (set(), False),  # no /proc/cpuinfo
    ],
)
def test_native_bfloat16_on_a_cpu(monkeypatch, flags, native):
    """AVX-512 BF16 or AMX BF16 in the CPU's flags: bfloat16 arithmetic in hardware."""
    monkeypatch.setattr(dev, "cpu_flags", lambda: flags)
    assert has_native_bfloat16(CPU) is native


def test_native_bfloat16_on_cuda_and_mps(monkeypatch):
    for supported in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
        assert has_native_bfloat16(CUDA) is supported
    assert has_native_bfloat16(torch.device("mps")) is False


def test_cpu_flags_come_from_proc_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\nmodel name\t: Some CPU\n")
    real = dev.Path
    monkeypatch.setattr(dev, "Path", lambda path: cpuinfo if path == "/proc/cpuinfo" else real(path))
    assert dev.cpu_flags() == {"fpu", "avx2", "avx512f", "avx512_bf16"}  # whole flags, not "flags" or ":"
    cpuinfo.unlink()  # no /proc (macOS, Windows): no flags, no error
    assert dev.cpu_flags() == set()


def test_autocast_float32_is_no_autocast_and_bfloat16_is():
    layer = nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast(CPU, torch.float32):
        assert not torch.is_autocast_enabled("cpu")
        assert layer(x).dtype == torch.float32
    with autocast(CPU, torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")
        assert layer(x).dtype == torch.bfloat16
    assert layer.weight.dtype == torch.float32  # autocast, not a cast of the weights


@pytest.mark.parametrize("threads", [1, 2])
def test_device_name_of_a_cpu(monkeypatch, threads):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    name = device_name(CPU)
    capability = torch.backends.cpu.get_cpu_capability()
    assert name.endswith(f" ({capability}, {threads} thread{'s' if threads > 1 else ''})"), name
    assert name.split(" (")[0].strip()  # the CPU's model, or at least the machine type


def test_device_name_of_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    assert device_name(CUDA) == "NVIDIA H100 80GB HBM3"
    assert device_name(torch.device("mps")).startswith("Apple GPU (MPS, ")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA here")
def test_on_a_real_cuda_card():
    device = pick_device("cuda")
    assert resolve_dtype("auto", device) == ("bfloat16" if torch.cuda.is_bf16_supported() else "float32")
    assert device_name(device) == torch.cuda.get_device_name(device)
    layer = nn.Linear(4, 3).to(device)
    with autocast(device, DTYPES[resolve_dtype("auto", device)]):
        out = layer(torch.randn(2, 4, device=device))
    assert out.dtype == DTYPES[resolve_dtype("auto", device)]
