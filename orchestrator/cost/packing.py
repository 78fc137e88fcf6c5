"""Whether a spec's GPU fractions hold its trials: each fraction of the GPU the spec is sized for
(``resources.gpu_memory_gib``) against the trial's estimated peak memory (``trainer.peak_memory``, to be replaced by
calibration). A fraction too small is a warning, not an error: the estimate errs high, and the real limit depends on
the GPU the trial lands on; a trial that does run out fails in one line (``trainer.device``)."""
from __future__ import annotations

from trainer.data.shapes import known_shape
from trainer.device import memory_limit_mb
from trainer.peak_memory import estimated_peak_bytes

DEFAULT_GPU_MEMORY_GIB = 16.0  # the smallest data-centre GPU a spec is sized for unless it says (V100 16 GB, T4)


def memory_warnings(spec) -> list[str]:
    """One ``field: message`` line per batch size whose GPU share, as a memory limit, is below its estimated peak."""
    gib = spec.resources.gpu_memory_gib or DEFAULT_GPU_MEMORY_GIB
    device_mb = int(gib * 1024)
    h, w = known_shape(spec.dataset).image_size
    lines = []
    for b in spec.batch_sizes():
        fraction = spec.resources_for(b)["gpu"]
        if not fraction:
            continue
        need_mb = estimated_peak_bytes(spec.model, b, (h, w), spec.train.precision) / 2**20
        try:
            limit = memory_limit_mb(min(fraction, 1.0), device_mb)
        except ValueError:
            limit = 0
        if limit < need_mb:
            field = f"resources.by_batch_size.{b}" if b in spec.resources.by_batch_size else "resources.gpu"
            lines.append(f"{field}: gpu {fraction:g} of a {gib:g} GiB GPU gives batch size {b} a {limit:,} MB "
                         f"memory limit, below the estimated peak of {need_mb:,.0f} MB for {spec.model} at "
                         f"{h}x{w} in {spec.train.precision}; its trials may run out of memory")
    return lines
