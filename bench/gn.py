"""GN against BN: training step time of the same network with ``make_norm("gn")`` and ``make_norm("bn")`` layers.

The sweep trains GN and BN trials side by side; if GN's step is much slower, the comparison costs more than it
should and GN trials become the sweep's long tail. Measured with ``model.fit`` on in-memory 64x64 arrays, compiled
as ``train_trial`` compiles it, at batch 32 and batch 2; LN and IN (the same layer with 1 and C groups) for
information. Target: GN step time <= 1.15x BN's.

resnet18 at 64x64 (stride-1 stem, no max-pool) needs seconds per step on a CPU, so it runs one compiled step per
call (a host round-trip is negligible next to a step that long) and few steps.
"""
from __future__ import annotations

from bench.harness import Context, Table, compiled_model, fit_rate, interleaved, load_arrays, median, ratio, ratios, \
    spread, trim, verdict

TARGET = 1.15
# model -> batch -> (images per measurement, repetitions, steps per compiled call or None for the trial's, norms)
PLAN = {
    "seed_cnn": {32: (128, 5, None, ("bn", "gn", "ln", "in")), 2: (64, 5, None, ("bn", "gn", "ln", "in"))},
    "resnet18": {32: (32, 2, 1, ("bn", "gn")), 2: (4, 3, 1, ("bn", "gn"))},
}


def _variant(model: str, norm: str, batch: int, x, y, classes: int, images: int, spe: int | None):
    m = compiled_model(model, norm, batch, x.shape[1:], classes, steps_per_execution=spe)
    xs, ys = trim(x, y, batch, images)
    fit_rate(m, x[:2], y[:2], batch)  # trace and compile on a 2-image batch (the traced batch size is unknown)
    fit_rate(m, xs[:batch], ys[:batch], batch)  # one full step: TensorFlow's first call per shape is slow

    def measure() -> float:
        return 1e3 * batch / fit_rate(m, xs, ys, batch)[0]  # ms per step

    return measure


def run(ctx: Context) -> list[Table]:
    from trainer.train import steps_per_execution

    ds = ctx.at_64()
    x, y, classes = load_arrays(ds, (64, 64))
    source = ds.label.split(" ")[0] if ctx.sample else "digits resized to 64x64"
    table = Table(f"GN vs BN: training step time at 64x64 ({source}; median of the repetitions, interleaved)",
                  ["model", "batch", "steps/call", "norm", "steps", "ms/step", "vs BN", "range", "target",
                   "verdict"])
    for model, batches in PLAN.items():
        for batch, (images, reps, spe, norms) in batches.items():
            variants = {n: _variant(model, n, batch, x, y, classes, images, spe) for n in norms}
            got = interleaved(variants, reps)
            for norm in norms:
                r = ratios(got[norm], got["bn"])
                main = norm == "gn"
                table.add(model, batch, spe or steps_per_execution(batch), norm, f"{reps}x{images // batch}",
                          f"{median(got[norm]):.1f}", ratio(median(r)), spread(r), f"<= {TARGET:g}x" if main else "-",
                          verdict(median(r), TARGET, at_most=True) if main else "-")
    table.notes.append("steps: repetitions x steps per measurement; GN groups are the model's default (32); "
                       "LN = 1 group, IN = C groups")
    return [table]
