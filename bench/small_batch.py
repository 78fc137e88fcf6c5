"""Small batches: training images/s at batch 2 against batch 32, same model, compiled as ``train_trial`` compiles it.

The paper's batch-size study trains at 2 images per GPU; if a batch-2 trial is far slower per image than a batch-32
one, that study dominates the sweep's cost. ``trainer.train.steps_per_execution`` (64 // batch steps per compiled
call) removes the per-step host round-trip at small batches, and XLA on CPU for the light models at batches of 4 or
fewer (``trainer.train.use_xla``) fuses away the per-op overhead that dominates a tiny step; batch 2 with one step
per call, and with XLA the other way, are measured too, to show what each buys. A measurement is one ``fit`` call
over IMAGES images, as an epoch is one call. Target: images/s at batch 2 >= 0.6x batch 32.
"""
from __future__ import annotations

from bench.harness import Context, Table, compiled_model, fit_rate, interleaved, load_arrays, median, rate, ratio, \
    ratios, spread, trim, verdict

TARGET = 0.6
REPS = 5
IMAGES = 512  # per measurement: 16 steps at batch 32, 256 at batch 2
MODELS = (("seed_cnn", (64, 64)), ("resnet8", (32, 32)))


def _variant(model: str, batch: int, x, y, classes: int, steps_per_execution: int | None = None,
             xla: bool | None = None):
    m = compiled_model(model, "bn", batch, x.shape[1:], classes, steps_per_execution=steps_per_execution, xla=xla)
    xs, ys = trim(x, y, batch, IMAGES)
    fit_rate(m, xs[:64], ys[:64], batch)  # trace and compile

    def measure() -> float:
        return fit_rate(m, xs, ys, batch)[0]

    return measure


def run(ctx: Context) -> list[Table]:
    from trainer.train import steps_per_execution, use_xla

    table = Table(f"small batches: training images/s, BN, {IMAGES} images per measurement ({REPS} rounds, "
                  f"interleaved)", ["model", "input", "batch", "steps/call", "xla", "img/s", "vs b32", "range",
                                    "target", "verdict"])
    for model, size in MODELS:
        ds = ctx.at_64() if size == (64, 64) else ctx.digits
        x, y, classes = load_arrays(ds, size)
        spe2 = steps_per_execution(2)
        variants = {
            ("32", steps_per_execution(32), use_xla(model, 32)): _variant(model, 32, x, y, classes),
            ("2", spe2, use_xla(model, 2)): _variant(model, 2, x, y, classes),
            ("2", spe2, not use_xla(model, 2)): _variant(model, 2, x, y, classes, xla=not use_xla(model, 2)),
            ("2", 1, use_xla(model, 2)): _variant(model, 2, x, y, classes, steps_per_execution=1),
        }
        got = interleaved(variants, REPS)
        base = got[("32", steps_per_execution(32), use_xla(model, 32))]
        source = "digits resized" if size == (64, 64) and ctx.sample is None else ds.label.split(" ")[0]
        for (batch, spe, xla), values in got.items():
            main = (batch, spe, xla) == ("2", spe2, use_xla(model, 2))
            r = ratios(values, base)
            table.add(model, f"{size[0]}x{size[1]} {source}", batch, spe, "on" if xla else "off",
                      rate(median(values)), ratio(median(r)), spread(r), f">= {TARGET:g}x" if main else "-",
                      verdict(median(r), TARGET) if main else "-")
    table.notes.append("steps/call: Keras steps_per_execution; xla: jit_compile; the trial's own values are "
                       "trainer.train.steps_per_execution(batch) and use_xla(model, batch); the rows with another "
                       "steps/call or xla are for comparison only")
    return [table]
