"""Longest first, and what a sweep's wall time would be on a cluster.

Ray Tune starts pending trials in the order it was given them, each on the first node with room (its FIFO scheduler
takes the first pending trial that fits). Handing it the trials longest first is the LPT rule for independent jobs
on identical machines (Graham 1969: within 4/3 of the optimal makespan), so the wall time approaches
max(longest trial, total work / slots). ``simulate`` replays that list scheduling with the estimated durations.
"""
from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    key: str
    seconds: float
    cpu: float
    gpu: float  # GPUs of the whole trial (per-replica share times replicas)


def longest_first(items: list, seconds) -> list:
    """``items`` sorted by ``seconds(item)``, longest first; ties keep their order (the sort is stable)."""
    return sorted(items, key=lambda item: -seconds(item))


def _fits(free: list[float], job: Job) -> bool:
    return free[0] + 1e-9 >= job.cpu and free[1] + 1e-9 >= job.gpu


def simulate(jobs: list[Job], nodes: list[dict], max_concurrent: int | None = None) -> dict[str, tuple[float, float]]:
    """Start and end time of each job when, whenever resources free up, the first jobs in ``jobs``' order that fit
    on some node start there (first fit). Jobs that fit on no node are left out.

    O(n (S + log n)) for n jobs of S shapes (a sweep has a few: one per resource request): whether a job fits
    depends only on its shape, so the candidates are the first waiting job of each shape, and once nothing fits
    anywhere only the node a finished job frees can take one. Under ``max_concurrent`` a freed slot may go to any
    node, so every node is looked at then (O(S x nodes) per start)."""
    free = [[float(n.get("CPU", 0.0)), float(n.get("GPU", 0.0))] for n in nodes]
    queues: dict[tuple[float, float], deque[tuple[int, Job]]] = {}
    for i, job in enumerate(jobs):
        if any(_fits(f, job) for f in free):
            queues.setdefault((job.cpu, job.gpu), deque()).append((i, job))
    running: list[tuple[float, int, int, Job]] = []  # (end, start order, node index, job): a heap of end times
    times: dict[str, tuple[float, float]] = {}
    now, scope = 0.0, range(len(free))
    while True:
        capped = False
        while True:  # start the first waiting job that fits on a node in scope, on the first such node
            if max_concurrent is not None and len(running) >= max_concurrent:
                capped = True
                break
            best = None
            for queue in queues.values():
                if queue and (best is None or queue[0][0] < best[0][0]):
                    node = next((k for k in scope if _fits(free[k], queue[0][1])), None)
                    if node is not None:
                        best = (queue[0], node, queue)
            if best is None:
                break
            (_, job), node, queue = best
            queue.popleft()
            free[node][0] -= job.cpu
            free[node][1] -= job.gpu
            heapq.heappush(running, (now + job.seconds, len(times), node, job))
            times[job.key] = (now, now + job.seconds)
        if not running:
            return times
        now, _, node, job = heapq.heappop(running)
        free[node][0] += job.cpu
        free[node][1] += job.gpu
        scope = range(len(free)) if capped else (node,)


def makespan(times: dict[str, tuple[float, float]]) -> float:
    return max((end for _, end in times.values()), default=0.0)


def slots(jobs: list[Job], nodes: list[dict], max_concurrent: int | None = None) -> float:
    """How many trials of the sweep's most common shape run at once on ``nodes``: the denominator of the lower
    bound total / slots."""
    if not jobs:
        return 0.0
    shapes: dict[tuple[float, float], int] = {}
    for j in jobs:
        shapes[(j.cpu, j.gpu)] = shapes.get((j.cpu, j.gpu), 0) + 1
    cpu, gpu = max(shapes, key=shapes.get)
    n = 0.0
    for node in nodes:
        fit = [node.get("CPU", 0.0) / cpu if cpu else float("inf"), node.get("GPU", 0.0) / gpu if gpu else
               float("inf")]
        n += int(min(fit) + 1e-9) if min(fit) != float("inf") else 0
    return min(n, max_concurrent) if max_concurrent else n


def lower_bound(jobs: list[Job], n_slots: float) -> float:
    """No schedule finishes before its longest job, nor before the total work spread over every slot."""
    if not jobs or not n_slots:
        return 0.0
    return max(max(j.seconds for j in jobs), sum(j.seconds for j in jobs) / n_slots)


def capacity_bound(jobs: list[Job], nodes: list[dict], max_concurrent: int | None = None) -> tuple[float, str]:
    """``lower_bound`` for jobs of mixed shapes (packed small batches hold a fraction of a GPU): no schedule ends
    before its longest job, nor before each resource's demand (seconds x amount held) spread over the cluster's
    total of it, nor before the total over ``max_concurrent``. Returns the bound and which term set it."""
    terms = {"longest trial": max((j.seconds for j in jobs), default=0.0)}
    for name, amount in (("GPU", lambda j: j.gpu), ("CPU", lambda j: j.cpu)):
        have = sum(float(n.get(name, 0.0)) for n in nodes)
        need = sum(j.seconds * amount(j) for j in jobs)
        if have and need:
            terms[f"{name}-seconds / {have:g} {name}s"] = need / have
    if max_concurrent:
        terms[f"total / {max_concurrent} at once"] = sum(j.seconds for j in jobs) / max_concurrent
    which = max(terms, key=terms.get)
    return terms[which], which
