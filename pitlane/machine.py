"""What a benchmark ran on: every `pitlane bench` names the CPU, because absolute times differ 2-3x between
machines (and numpy's loops with the vector extensions the CPU has)."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name and its widest x86 vector extension, e.g. "AMD EPYC 7B13 (AVX2)"; the platform's
    processor or architecture where /proc/cpuinfo is not available."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for line in info.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())  # the first CPU's entry
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    simd = next((label for flag, label in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags), None)
    return f"{name} ({simd})" if simd else name


def machine() -> dict[str, object]:
    """What the numbers were measured on: CPU (with AVX2 / AVX-512), cores, Python and numpy versions."""
    try:
        numpy_version = metadata.version("numpy")
    except metadata.PackageNotFoundError:
        numpy_version = None
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy_version,
    }


def title_suffix() -> str:
    """`CPU, N cores` for a benchmark table's title."""
    info = machine()
    return f"{info['cpu']}, {info['cores']} cores"
