"""Small batches: training images/s at batch 2 against batch 32, same model, compiled as ``train_trial`` compiles it.

The paper's batch-size study trains at 2 images per GPU; if a batch-2 trial is far slower per image than a batch-32
one, that study dominates the sweep's cost. ``trainer.train.steps_per_execution`` (64 // batch steps per compiled
call) exists to remove the per-step host round-trip at small batches; batch 2 with one step per call is measured too,
to show what it buys. Target: images/s at batch 2 >= 0.6x batch 32.
"""
from __future__ import annotations

from bench.harness import Context, Table, compiled_model, fit_rate, interleaved, load_arrays, median, rate, ratio, \
    ratios, spread, trim, verdict

TARGET = 0.6
REPS = 5
IMAGES = 128  # per measurement: 4 steps at batch 32, 64 at batch 2
MODELS = (("seed_cnn", (64, 64)), ("resnet8", (32, 32)))


def _variant(model: str, batch: int, x, y, classes: int, steps_per_execution: int | None = None):
    m = compiled_model(model, "bn", batch, x.shape[1:], classes, steps_per_execution=steps_per_execution)
    xs, ys = trim(x, y, batch, IMAGES)
    fit_rate(m, xs[:64], ys[:64], batch)  # trace and compile

    def measure() -> float:
        return fit_rate(m, xs, ys, batch)[0]

    return measure


def run(ctx: Context) -> list[Table]:
    from trainer.train import steps_per_execution

    table = Table(f"small batches: training images/s, BN, {IMAGES} images per measurement ({REPS} rounds, "
                  f"interleaved)", ["model", "input", "batch", "steps/call", "img/s", "vs b32", "range", "target",
                                    "verdict"])
    for model, size in MODELS:
        ds = ctx.at_64() if size == (64, 64) else ctx.digits
        x, y, classes = load_arrays(ds, size)
        spe2 = steps_per_execution(2)
        variants = {
            ("32", steps_per_execution(32)): _variant(model, 32, x, y, classes),
            ("2", spe2): _variant(model, 2, x, y, classes),
            ("2", 1): _variant(model, 2, x, y, classes, steps_per_execution=1),
        }
        got = interleaved(variants, REPS)
        base = got[("32", steps_per_execution(32))]
        source = "digits resized" if size == (64, 64) and ctx.sample is None else ds.label.split(" ")[0]
        for (batch, spe), values in got.items():
            main = (batch, spe) == ("2", spe2)
            r = ratios(values, base)
            table.add(model, f"{size[0]}x{size[1]} {source}", batch, spe, rate(median(values)), ratio(median(r)),
                      spread(r), f">= {TARGET:g}x" if main else "-", verdict(median(r), TARGET) if main else "-")
    table.notes.append("steps/call: Keras steps_per_execution; the trial's own value is "
                       "trainer.train.steps_per_execution(batch); the 1-step row is for comparison only")
    return [table]
