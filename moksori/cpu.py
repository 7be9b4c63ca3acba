"""What this machine's CPU can do fast, for choosing a number format (no torch import here).

bfloat16 pays on a CPU only with bf16 arithmetic in hardware (AVX-512 BF16, AMX): there oneDNN
runs bf16 convolutions and matmuls natively; on an AVX2-only CPU it converts every operand and
bf16 runs 10-18x slower than fp32 (both measured, benchmarks/README.md). PyTorch's own
``torch.backends.cpu.get_cpu_capability()`` says ``AVX512`` for CPUs with and without the BF16
extension, so the flags are read from the kernel.
"""

from __future__ import annotations

import functools
from pathlib import Path

# CPU flags (as /proc/cpuinfo spells them) of native bfloat16 arithmetic.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (empty where the file does not exist)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU does bfloat16 arithmetic in hardware (so bf16 can beat fp32 on it)."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_FLAGS)


__all__ = ["BF16_FLAGS", "cpu_flags", "native_bf16"]
