"""Where a run trains and in which precision: the device, its name, and the bfloat16 choice."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import torch

from mnist_lite.config import PRECISIONS
from mnist_lite.errors import MnistLiteError

DTYPES = {name: getattr(torch, name) for name in PRECISIONS}


def is_available(name: str) -> bool:
    """Whether this machine has the device ``cuda``, ``mps`` or ``cpu``."""
    checks = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available, "cpu": lambda: True}
    return name in checks and checks[name]()


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` takes CUDA, else Apple's MPS, else the CPU; a named device must exist. A device
    already picked is taken as it is."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device(next(kind for kind in ("cuda", "mps", "cpu") if is_available(kind)))
    if not is_available(name):
        raise MnistLiteError(f"--device {name}: not available on this machine (try --device auto)")
    return torch.device(name)


def has_native_bfloat16(device: torch.device) -> bool:
    """A CUDA card with bfloat16 (Ampere or later), or a CPU whose flags list AVX-512 BF16 or AMX
    BF16. PyTorch's ``get_cpu_capability`` names the vector width only (AVX512, not its BF16
    extension), so the flags are read from Linux's /proc/cpuinfo; elsewhere a CPU counts as without."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return not cpu_flags().isdisjoint({"avx512_bf16", "amx_bf16"})
    return False


def cpu_flags() -> set[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them; none where there is no /proc (macOS, Windows)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return set()
    return {flag for line in lines if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def resolve_dtype(name: str, device: torch.device) -> str:
    """The precision a run uses: ``auto`` picks bfloat16 where ``device`` has it natively, else float32.
    An unknown name, or bfloat16 on a CUDA card without it, is refused before anything is written."""
    if name == "auto":
        return "bfloat16" if has_native_bfloat16(device) else "float32"
    if name not in DTYPES:
        raise MnistLiteError(f"dtype {name!r}: expected auto or one of {', '.join(DTYPES)}")
    if name == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise MnistLiteError(
            f"--dtype bfloat16: {torch.cuda.get_device_name(device)} has no bfloat16; use float32"
        )
    return name


def autocast(device: torch.device, dtype: torch.dtype):
    """Autocast to ``dtype`` on ``device``, or nothing at all for float32."""
    return contextlib.nullcontext() if dtype == torch.float32 else torch.autocast(device.type, dtype=dtype)


def device_name(device: torch.device) -> str:
    """The GPU's name; for a CPU its model, the vector instructions PyTorch uses on it (one
    "AMD EPYC" may have AVX2 only, another AVX-512) and the number of threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple GPU (MPS, {platform.machine()})"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return (
        f"{model} ({torch.backends.cpu.get_cpu_capability()}, {threads} thread{'s' if threads > 1 else ''})"
    )
