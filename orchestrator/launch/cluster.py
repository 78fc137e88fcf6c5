"""Checks of a Ray cluster against a sweep before any trial starts: every trial shape fits on some node, and every
node that can run a trial sees the results and the dataset at the same paths, or reads them from object storage."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from trainer.storage import Location, is_remote

if TYPE_CHECKING:
    from orchestrator.spec.model import SweepSpec


class ClusterError(Exception):
    """The cluster cannot run the sweep as it is; one line per problem."""


STORAGE_CHECK_SECONDS = 120
SHARED_STORAGE_HINT = "must be on storage every node mounts at the same path (NFS, EFS, Filestore, a Kubernetes volume)"
CREDENTIALS_HINT = ("give every node credentials for the bucket (an instance role, workload identity, or AWS_* / "
                    "GOOGLE_APPLICATION_CREDENTIALS where Ray starts)")


def missing_paths(paths: list[str]) -> list[str]:
    """The ``paths`` this process cannot see (object-store URIs: cannot read with this node's credentials); runs as a
    Ray task pinned to each node by ``check_shared_storage``."""
    return [p for p in paths if not _reachable(p)]


def _reachable(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    try:
        return Location.of(path).exists()
    except Exception:  # noqa: BLE001 - whatever stops this node reading the bucket (credentials, network, options)
        return False


def trial_nodes() -> list[dict]:
    """Alive nodes that can run a trial (some CPU or GPU); a 0-CPU head runs none."""
    import ray

    return [n for n in ray.nodes()
            if n.get("Alive") and (n["Resources"].get("CPU", 0) > 0 or n["Resources"].get("GPU", 0) > 0)]


def node_name(node: dict) -> str:
    return f"{node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]})"


def unseen_paths(paths: dict[str, Path], nodes: list[dict], timeout: float = STORAGE_CHECK_SECONDS) -> dict[str, list]:
    """For each of ``paths`` (label -> absolute path) that some of ``nodes`` cannot see, those nodes' names. A node
    whose check fails or does not answer within ``timeout`` seconds counts as seeing nothing."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    check = ray.remote(num_cpus=0, max_retries=0)(missing_paths)
    wanted = {str(p): label for label, p in paths.items()}
    refs = {check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(list(wanted)): n for n in nodes}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
    blind: dict[str, list] = {}
    for ref, node in refs.items():
        try:
            missing = ray.get(ref) if ref in ready else list(wanted)
        except ray.exceptions.RayError:
            missing = list(wanted)
        for p in missing:
            blind.setdefault(wanted[p], []).append(node_name(node))
    return blind


def check_shared_storage(sweep_dir: Location | Path, dataset_dir: Path | Location,
                         echo: Callable[[str], None]) -> None:
    """On a cluster of several nodes, refuse to start unless every node that can run a trial sees the sweep directory
    (a retried trial resumes from its checkpoint on whichever node it lands) and the dataset at the same paths. Ray
    Tune would not notice: trials would fail one by one, or a lost node's trial would restart from scratch. Results
    on an object store (a URI) are shared by nature; a dataset there must be readable from every node (each copies
    it, ``trainer.data.cache``), which is what is checked then."""
    import ray

    from trainer.data import INFO_FILE

    if sum(1 for n in ray.nodes() if n.get("Alive")) < 2:
        return
    nodes = trial_nodes()
    sweep_dir = Location.of(sweep_dir)
    paths = {"dataset": dataset_dir / INFO_FILE}
    marker = sweep_dir.as_path() / f".storage-check-{uuid.uuid4().hex}" if sweep_dir.local else None
    if marker:
        marker.write_text("written by the gnsweep driver; every node must see it\n")
        paths["results"] = marker
    try:
        blind = unseen_paths(paths, nodes)
    finally:
        if marker:
            marker.unlink(missing_ok=True)
    problems = []
    if "results" in blind:
        problems.append(f"shared storage: {len(blind['results'])} of {len(nodes)} nodes cannot see the results "
                        f"directory {sweep_dir} ({', '.join(blind['results'])}); results and checkpoints (--results) "
                        f"{SHARED_STORAGE_HINT}")
    if "dataset" in blind and isinstance(dataset_dir, Location) and not dataset_dir.local:
        problems.append(f"object storage: {len(blind['dataset'])} of {len(nodes)} nodes cannot read the dataset "
                        f"{dataset_dir.shown} ({', '.join(blind['dataset'])}); {CREDENTIALS_HINT}")
    elif "dataset" in blind:
        problems.append(f"shared storage: {len(blind['dataset'])} of {len(nodes)} nodes cannot see the dataset "
                        f"{dataset_dir} ({', '.join(blind['dataset'])}); it {SHARED_STORAGE_HINT}")
    if problems:
        raise ClusterError("\n".join(problems))
    echo(f"shared storage: checked {len(nodes)} nodes")


def cluster_problems(spec) -> list[str]:
    """``spec_problems_for_cluster`` on the connected Ray cluster's alive nodes."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    return spec_problems_for_cluster(spec, nodes)


def spec_problems_for_cluster(spec: SweepSpec, nodes: list[dict]) -> list[str]:
    """One line per trial shape that fits on no node of the cluster (``nodes``: Ray node resource dicts such as
    ``{"CPU": 2.0, "GPU": 1.0}``): an infeasible request is an error, not an endless wait."""
    if not nodes:
        return ["resources: the cluster has no alive nodes"]
    most_cpu = max(float(n.get("CPU", 0)) for n in nodes)
    most_gpu = max(float(n.get("GPU", 0)) for n in nodes)
    if any(float(n.get("CPU", 0)) == most_cpu and float(n.get("GPU", 0)) == most_gpu for n in nodes):
        largest = f"the largest node has {most_cpu:g} CPU and {most_gpu:g} GPU"
    else:
        largest = f"no node has both (the most on one node: {most_cpu:g} CPU, {most_gpu:g} GPU)"
    problems = []
    batch_sizes = sorted(spec.batch_sizes(), key=lambda b: b in spec.resources.by_batch_size)  # common shape first
    for b in batch_sizes:
        r = spec.trial_resources(b)
        cpu, gpu = r["CPU"], r["GPU"]
        if any(float(n.get("CPU", 0)) >= cpu and float(n.get("GPU", 0)) >= gpu for n in nodes):
            continue
        field, trial = ((f"resources.by_batch_size.{b}", f"a trial of batch size {b}")
                        if b in spec.resources.by_batch_size else ("resources", "a trial"))
        problems.append(f"{field}: {trial} needs {cpu:g} CPU and {gpu:g} GPU but {largest}")
    return list(dict.fromkeys(problems))
