"""What the machine at hand can do, and how a run drives it fast: where it trains (CPU or CUDA),
``trainer.precision=auto`` decided for that hardware, and the process's memory allocator.

The fast path (measured with ``python -m resnet_exp.bench``): bf16 autocast where the hardware
computes bfloat16 natively (CUDA GPUs that have it; CPUs with AVX512-BF16 or AMX-BF16), the network
and batches in channels_last layout (``classifier.py``, ``data/pipelines.py``), the data set resized once on the
training device (``data.pipeline=auto``), and on Linux an allocator that keeps freed memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
import time
from typing import Any

import torch

from resnet_exp.library_internals import cpu_reports_avx512_bf16

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def uses_gpu(trainer: Any) -> bool:
    """Whether a run with these ``trainer.*`` settings trains on CUDA GPUs."""
    return str(trainer.accelerator) in ("auto", "gpu", "cuda") and trainer.devices != 0 and torch.cuda.is_available()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX-BF16), where bf16 autocast
    is the fast path; elsewhere oneDNN emulates it and fp32 is as fast or faster."""
    capabilities = getattr(torch.cpu, "get_capabilities", lambda: {})()
    if capabilities:
        return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    return cpu_reports_avx512_bf16()


def auto_precision(trainer: Any) -> str:
    """``trainer.precision=auto`` for these ``trainer.*`` settings on this machine: bf16-mixed on a
    GPU that has bfloat16 and on a CPU with native bfloat16, 32-true elsewhere."""
    if uses_gpu(trainer):
        fast = torch.cuda.is_bf16_supported()
    else:
        fast = str(trainer.accelerator) in ("auto", "cpu") and cpu_has_native_bf16()
    return "bf16-mixed" if fast else "32-true"


# The instruction sets that decide which kernels a CPU run takes (fp32 and bf16), as torch names them.
ISA = ("avx2", "avx512_f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_model() -> str:
    """The CPU's model name as the system gives it (``/proc/cpuinfo`` on Linux), else torch's or
    the platform's name for it."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    capabilities = getattr(torch.cpu, "get_capabilities", lambda: {})()
    return str(capabilities.get("cpu_name") or platform.processor() or platform.machine())


def machine(device: torch.device | str = "cpu") -> dict[str, Any]:
    """What a record needs to tell machines apart: the CPU's model, the instruction sets of ``ISA``
    it has, the logical cores this process may run on, torch's intra-op threads, the kernels torch
    dispatches to (``AVX512``, ``AVX2``, ...) and torch's build; and the GPU's name where the job
    trains on ``device`` of type cuda."""
    capabilities = getattr(torch.cpu, "get_capabilities", lambda: {})()
    found = {
        "cpu": cpu_model(),
        "isa": [name for name in ISA if capabilities.get(name)],
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": torch.get_num_threads(),
        "kernels": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }
    if torch.device(device).type == "cuda":
        found["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return found


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep the memory that a training step frees, for the next step to reuse.

    Each step allocates and frees activations of tens of MB; by default glibc hands blocks that big
    back to the kernel (mmap/munmap) and every step page-faults them in again, zeroed: on the
    project's 2-core CPU that cost about a sixth of the training time. Process-wide and harmless
    (freed memory stays with the process, bounded by its peak); a no-op where malloc is not
    glibc's. Returns whether it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def accelerator_problem(accelerator: str, devices: Any, num_nodes: int = 1) -> str | None:
    """Why ``trainer.accelerator``/``trainer.devices`` cannot run on this machine, or None."""
    if accelerator == "mps":
        return None if torch.backends.mps.is_available() else "no Apple GPU (MPS) here; use trainer.accelerator=auto"
    if not torch.cuda.is_available():
        return "no CUDA GPU is available here; use trainer.accelerator=auto (the CPU here) or cpu"
    have = torch.cuda.device_count()
    wanted = devices if isinstance(devices, int) else None
    if isinstance(devices, str) and devices.isdigit():
        wanted = int(devices)
    if wanted is not None and wanted > have and num_nodes == 1:
        return f"this machine has {have} GPU(s); use trainer.devices={have} or fewer"
    return None


def synced_clock(device: torch.device) -> float:
    """``time.perf_counter()`` once the work queued on ``device`` is done (a GPU runs ahead of the host)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
