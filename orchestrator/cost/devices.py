"""Which device a sweep's cost is estimated for, what it is assumed to deliver, and how many trial slots a cluster
has. No TensorFlow and no Ray here: a dry run answers in well under a second.

The throughputs are assumptions, not measurements: effective training FLOP/s (FLOP = 2 multiply-adds) of a Keras
ResNet at small images in float32/TF32, well below the data-sheet peaks. ``gnsweep calibrate`` replaces them with
measured steps per second on the machine it runs on.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceModel:
    """An assumed device: effective training throughput and a fixed cost per step and layer (kernel launches,
    per-op overhead), which is what makes batch 2 far slower per image than batch 32."""

    name: str
    tflops: float  # effective TFLOP/s of one device (for CPU: of one core)
    step_overhead_per_layer_s: float
    per_core: bool = False


ASSUMED = {
    "A100": DeviceModel("A100", 25.0, 1e-4),
    "H100": DeviceModel("H100", 45.0, 8e-5),
    "H200": DeviceModel("H200", 50.0, 8e-5),
    "A10G": DeviceModel("A10G", 10.0, 1e-4),
    "T4": DeviceModel("T4", 4.0, 1.2e-4),
    "CPU": DeviceModel("CPU", 0.04, 2e-4, per_core=True),
}
DEFAULT_GPU = "A100"


def assumed_kind(device: str) -> str | None:
    """The ASSUMED entry a device name is ("NVIDIA H200" is H200, "cpu: ..." is CPU), or None for a name that is
    none of them."""
    upper = device.upper()
    for key in sorted(ASSUMED, key=len, reverse=True):
        if re.search(rf"(^|[^A-Z0-9]){key}($|[^A-Z0-9])", upper):
            return key
    return "CPU" if upper.startswith("CPU") else None


def assumed_model(device: str) -> DeviceModel:
    """The assumed-throughput entry matching a device name ("NVIDIA H200", "Tesla T4", "a10g", "cpu: ..."); a GPU
    of an unknown kind gets the default GPU's numbers under its own name."""
    kind = assumed_kind(device)
    if kind is not None:
        return ASSUMED[kind]
    return DeviceModel(device, ASSUMED[DEFAULT_GPU].tflops, ASSUMED[DEFAULT_GPU].step_overhead_per_layer_s)


def local_gpus() -> list[str]:
    """Names of this machine's NVIDIA GPUs, from nvidia-smi (empty without one); TensorFlow is not imported."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"CPU {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return "CPU"


def local_device() -> str:
    """This machine's device as calibration tables are keyed: the first GPU's name, else the CPU's model name."""
    gpus = local_gpus()
    return gpus[0] if gpus else cpu_name()


def slug(device: str) -> str:
    """A file name for a device's calibration table: ``NVIDIA H200`` -> ``nvidia-h200``."""
    return re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")[:80] or "device"


@dataclass(frozen=True)
class ClusterShape:
    """Where the sweep would run: nodes as Ray resource dicts, a description and the device kind its GPUs are."""

    nodes: tuple[dict, ...]
    description: str
    gpu_kind: str | None  # the GPUs' name when known ("A100", "NVIDIA H200"), None for CPUs only

    @property
    def gpus(self) -> float:
        return sum(n.get("GPU", 0.0) for n in self.nodes)

    @property
    def cpus(self) -> float:
        return sum(n.get("CPU", 0.0) for n in self.nodes)


def what_if(gpus: int | None, cpus: int | None) -> ClusterShape:
    """The cluster a user asks about with ``--gpus N`` / ``--cpus N``: one pool; CPUs are not the limit unless
    given."""
    node = {"GPU": float(gpus or 0), "CPU": float(cpus) if cpus else float("inf")}
    parts = ([f"{gpus} GPUs"] if gpus else []) + ([f"{cpus} CPUs"] if cpus else [])
    note = "" if cpus else "; CPUs assumed not to limit"
    return ClusterShape((node,), f"{' and '.join(parts)} (asked{note})", None)


def this_machine() -> ClusterShape:
    gpus = local_gpus()
    cpus = float(os.cpu_count() or 1)
    desc = f"this machine: {len(gpus)} x {gpus[0]}, {cpus:g} CPUs" if gpus else f"this machine: {cpus:g} CPUs, no GPU"
    return ClusterShape(({"CPU": cpus, "GPU": float(len(gpus))},), desc, gpus[0] if gpus else None)


def connected_cluster() -> ClusterShape:
    """The alive nodes of the Ray cluster this process is connected to; the GPU kind from Ray's
    ``accelerator_type:*`` resource when it detected one."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    kinds = sorted({k.split(":", 1)[1] for n in nodes for k in n if k.startswith("accelerator_type:")})
    gpus = sum(n.get("GPU", 0.0) for n in nodes)
    cpus = sum(n.get("CPU", 0.0) for n in nodes)
    kind = kinds[0] if kinds else None
    desc = f"the connected cluster: {len(nodes)} nodes, {gpus:g} GPUs{f' ({kind})' if kind else ''}, {cpus:g} CPUs"
    return ClusterShape(tuple({"CPU": n.get("CPU", 0.0), "GPU": n.get("GPU", 0.0)} for n in nodes), desc, kind)
