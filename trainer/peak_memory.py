"""An estimate of one training step's peak device memory, from the architecture alone (no TensorFlow, no device).

It sizes GPU fractions (``resources.by_batch_size``) and names a trial's need when it runs out of its memory limit.
It is an ESTIMATE, to be replaced by calibration (``gnsweep calibrate`` measures the real peak per model, batch and
precision); until then it errs on the high side. The formula, in bytes:

    peak = OVERHEAD * (state + activations) + WORKSPACE
    state       = parameters * (4 weights + 4 gradients + 4 momentum [+ 2 for the low-precision copy under mixed])
    activations = sum over normalization sites of  batch * h * w * channels * (3 * act_bytes + 4)

A normalization site is one convolution with its norm and ReLU; backprop keeps its three outputs (conv, norm, ReLU)
in the compute dtype (act_bytes: 4 for float32, 2 under mixed precision) plus the norm's float32 centred input.
OVERHEAD (1.25) covers the allocator's fragmentation and the residual adds; WORKSPACE (256 MiB) the cuDNN
workspace and XLA's temporaries. Not counted: the CUDA context (outside TensorFlow's limit; see
``trainer.device.CONTEXT_RESERVE_MB``). For ResNet-50 at 64x64 in float32 this gives about 9 GB at batch 32 and
1.2 GB at batch 2.
"""
from __future__ import annotations

from trainer.models import Conv, layers_of, parameter_count, sized

OVERHEAD = 1.25
WORKSPACE_BYTES = 256 * 2**20
PARAM_BYTES = {"float32": 12, "mixed_bfloat16": 14, "mixed_float16": 14}
ACT_BYTES = {"float32": 4, "mixed_bfloat16": 2, "mixed_float16": 2}
NORM_BYTES = 4  # the norm's float32 copy of its centred input, under every precision


def estimated_peak_bytes(model: str, batch_size: int, image_size: tuple[int, int] | int = (64, 64),
                         precision: str = "float32", num_classes: int = 200) -> int:
    """Estimated peak device memory of one training step of ``model`` at ``batch_size`` images of ``image_size``
    (an int means square) under ``precision``; see the module docstring for the formula and its status."""
    if precision not in ACT_BYTES:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(ACT_BYTES)}")
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    layers = layers_of(model, num_classes)
    elements = sum(batch_size * sh * sw * layer.c_out for layer, sh, sw in sized(layers, (h, w))
                   if isinstance(layer, Conv))
    params = parameter_count(layers)
    activations = elements * (3 * ACT_BYTES[precision] + NORM_BYTES)
    state = params * PARAM_BYTES[precision]
    return int(OVERHEAD * (state + activations) + WORKSPACE_BYTES)
