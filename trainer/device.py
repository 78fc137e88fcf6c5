"""A trial's share of a GPU, enforced: a hard TensorFlow memory limit equal to its fraction of the device, and a
one-line failure when the trial needs more, which a retry with the same limit does not repeat.

Ray's fractional GPUs only count; they do not split memory. Memory growth (TF_FORCE_GPU_ALLOW_GROWTH) only delays
the moment packed trials grow into each other, so each trial's process gets a logical device whose
``memory_limit`` is its fraction of the device's memory, less the CUDA context that lives outside TensorFlow's
allocator. Pure functions here are tested on CPU; ``configure_gpus`` needs a GPU to do anything.
"""
from __future__ import annotations

import json
import os
import subprocess

CONTEXT_RESERVE_MB = 512  # per process: the CUDA context, cuDNN and cuBLAS handles, outside TensorFlow's limit
OOM_FILE = "out-of-memory.json"
OOM_MARKERS = ("OOM when allocating", "Out of memory", "out of memory", "RESOURCE_EXHAUSTED",
               "Dst tensor is not initialized")


class DeviceMemoryError(RuntimeError):
    """A trial needed more device memory than its limit; the message is the one line the trials table records."""


def memory_limit_mb(fraction: float, device_mb: int, reserve_mb: int = CONTEXT_RESERVE_MB) -> int:
    """TensorFlow's memory limit (MB) for a trial holding ``fraction`` of a device of ``device_mb``: its share less
    the per-process CUDA context, so that trials whose fractions add up to 1 fit on the device together."""
    if not 0 < fraction <= 1:
        raise ValueError(f"a GPU fraction must be in (0, 1], got {fraction:g}")
    limit = int(fraction * device_mb) - reserve_mb
    if limit <= 0:
        raise ValueError(f"{fraction:g} of a {device_mb} MB GPU leaves nothing after the {reserve_mb} MB CUDA "
                         f"context; give the trial a larger fraction")
    return limit


def visible_gpu_memory_mb(query=None) -> int | None:
    """The memory (MB) of the smallest GPU this process may use (``CUDA_VISIBLE_DEVICES``, as Ray sets it, by index
    or UUID), from ``nvidia-smi``; None when there is no ``nvidia-smi`` or it fails. ``query`` replaces the
    ``nvidia-smi`` call (for tests: it returns its CSV text)."""
    try:
        text = (query or _nvidia_smi)()
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[2].isdigit():
            gpus.append((parts[0], parts[1], int(parts[2])))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        wanted = {v.strip() for v in visible.split(",") if v.strip()}
        gpus = [g for g in gpus if g[0] in wanted or g[1] in wanted]
    return min((g[2] for g in gpus), default=None)


def _nvidia_smi() -> str:
    return subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,memory.total", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True, timeout=30, check=True).stdout


def configure_gpus(fraction: float | None) -> int | None:
    """Give every visible GPU a hard memory limit of ``fraction`` of its memory and return it (MB). ``None`` (a
    trial run as a library) lets memory grow instead; 0 hides the GPUs (Ray no longer hides them from a CPU-only
    trial on a GPU node). Must run before TensorFlow initializes its devices."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    if fraction is None:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        return None
    if fraction == 0:
        tf.config.set_visible_devices([], "GPU")
        return None
    device_mb = visible_gpu_memory_mb()
    if device_mb is None:
        import warnings

        warnings.warn("cannot read the GPU's memory (no nvidia-smi): the trial runs with memory growth and no limit")
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        return None
    limit = memory_limit_mb(min(fraction, 1.0), device_mb)
    os.environ.pop("TF_FORCE_GPU_ALLOW_GROWTH", None)  # a fixed limit replaces growth
    for gpu in gpus:
        tf.config.set_logical_device_configuration(gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)])
    return limit


def is_out_of_memory(error: BaseException) -> bool:
    """TensorFlow's ways of saying a device allocation failed: ResourceExhaustedError, or an XLA or copy error
    whose message says so."""
    import tensorflow as tf

    if isinstance(error, tf.errors.ResourceExhaustedError):
        return True
    return isinstance(error, tf.errors.OpError) and any(m in str(error) for m in OOM_MARKERS)


def oom_message(trial_key: str, limit_mb: int | None, need_bytes: int) -> str:
    """The one line a trial that ran out of device memory fails with."""
    need = f"estimated need {need_bytes / 2**20:,.0f} MB"
    if limit_mb is None:
        return f"trial {trial_key} ran out of memory with no device memory limit ({need})"
    return (f"trial {trial_key} ran out of its device memory limit of {limit_mb:,} MB ({need}); give its batch "
            f"size a larger GPU fraction (resources.by_batch_size)")


def record_oom(checkpoint_dir, limit_mb: int | None, message: str) -> None:
    """Remember the failure beside the trial's checkpoints, so a retry under the same limit is refused at once."""
    from trainer.storage import Location

    (Location.of(checkpoint_dir) / OOM_FILE).write_text(json.dumps({"limit_mb": limit_mb, "message": message}))


def earlier_oom(checkpoint_dir, limit_mb: int | None) -> str | None:
    """The message of an earlier out-of-memory failure at this limit or a larger one (a retry would fail the same
    way); None when there was none, or the limit has grown since (a spec with a larger fraction)."""
    from trainer.storage import Location

    where = Location.of(checkpoint_dir) / OOM_FILE
    if not where.exists():
        return None
    earlier = json.loads(where.read_text())
    if limit_mb is not None and earlier.get("limit_mb") is not None and limit_mb > earlier["limit_mb"]:
        return None
    return earlier["message"]
