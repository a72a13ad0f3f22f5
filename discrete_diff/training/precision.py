"""The training precision a machine runs fastest: bf16 autocast where the hardware computes bf16, else fp32.

On a CPU with native bf16 instructions (x86 AVX512-BF16 or AMX, Arm's BF16 extension) bf16 autocast trains the
default network about 1.7x faster than fp32; on one without them (AVX2 only) PyTorch emulates bf16 and the same
step is about 15x slower than fp32 (benchmarks/README.md, "block_step"). So the configs leave `trainer.precision`
out and the train command fills in this choice; a config or `--trainer.precision` still decides when it says.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
"""/proc/cpuinfo flags of bf16 arithmetic: x86 (AVX512-BF16, AMX) and Arm (FEAT_BF16, listed as `bf16`)."""


def cpu_flags(cpuinfo: str) -> set[str]:
    """Every flag of /proc/cpuinfo's `flags` (x86) or `Features` (Arm) lines."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags |= set(value.split())
    return flags


def native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bf16 in hardware; False where that cannot be read (not Linux)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        if platform.system() != "Linux" or not path.is_file():
            return False
        cpuinfo = path.read_text(errors="replace")
    return bool(cpu_flags(cpuinfo) & NATIVE_BF16_FLAGS)


def fastest_precision() -> str:
    """Lightning's precision for a CPU run here: "bf16-mixed" with native bf16, else "32-true"."""
    return "bf16-mixed" if native_bf16() else "32-true"


def autocast_dtype() -> torch.dtype | None:
    """The same choice for code that trains outside Lightning: bf16 to autocast to, or None for fp32."""
    return torch.bfloat16 if native_bf16() else None
