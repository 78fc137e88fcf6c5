"""Each computation once: trials that are the same network under another name share one run, and the results
show that run in every study that includes either name."""
from datetime import datetime, timezone

import pandas as pd
import pytest

from orchestrator.spec.dedup import same_as, why_same
from orchestrator.spec.plan import plan_trials
from orchestrator.spec.validation import parse_spec
from trainer.config import TrainSettings, TrialConfig

BASE = {"name": "d", "dataset": "builtin:digits", "seeds": [0, 1], "resources": {"cpu": 1}}


def plan(model: str, studies: dict, **extra):
    return {t.key: t for t in plan_trials(parse_spec({**BASE, "model": model, "studies": studies, **extra}))}


def test_gn_with_one_group_is_ln_and_one_channel_per_group_is_in():
    trials = plan("resnet50", {"norms": {"norm": ["bn", "ln", "in", "gn"], "batch_size": [32]},
                               "groups": {"norm": ["gn"], "groups": [32, 1], "batch_size": [32]},
                               "cpg": {"norm": ["gn"], "channels_per_group": [16, 1], "batch_size": [32]}})
    shared = {k: t.same_as for k, t in trials.items() if t.same_as}
    assert shared == {"gn-b32-g1-s0": "ln-b32-s0", "gn-b32-g1-s1": "ln-b32-s1",
                      "gn-b32-cpg1-s0": "in-b32-s0", "gn-b32-cpg1-s1": "in-b32-s1"}
    assert trials["gn-b32-g1-s0"].studies == ("groups",)  # its own studies: the report expands it there
    assert why_same(trials["gn-b32-g1-s0"].config, trials["ln-b32-s0"].config) == "GN with G = 1 is LN"
    assert why_same(trials["gn-b32-cpg1-s0"].config, trials["in-b32-s0"].config) == \
        "GN with 1 channel per group is IN"


def test_what_must_not_be_merged():
    # another seed, batch or model width is another computation; GN with G = 16 on resnet8 is IN only in its
    # 16-channel layers (32 and 64 channels get 16 groups of 2 and 4), so it is not IN
    trials = plan("resnet8", {"a": {"norm": ["in", "bn"], "batch_size": [32, 8]},
                              "b": {"norm": ["gn"], "groups": [16, 8], "batch_size": [32]}})
    assert not any(t.same_as for t in trials.values())


def test_gn_settings_that_give_the_same_groups_in_every_layer_are_one_run():
    # seed_cnn's layers have 64 and 256 channels: 64 channels per group is 1 and 4 groups, which G = 4 is not;
    # but on resnet8 (16/32/64) channels_per_group 16 gives G = 1, 2, 4 by layer; nothing else does
    configs = [TrialConfig("resnet8", "gn", 32, channels_per_group=16, train=TrainSettings(epochs=1)),
               TrialConfig("resnet8", "gn", 32, groups=1, train=TrainSettings(epochs=1))]
    assert same_as(configs) == {}
    configs.append(TrialConfig("resnet8", "ln", 32, train=TrainSettings(epochs=1)))
    assert same_as(configs) == {"ln-b32-s0": "gn-b32-g1-s0"}
    assert why_same(configs[2], configs[1]) == "GN with G = 1 is LN"


@pytest.mark.parametrize("alias,canonical", [({"norm": "gn", "groups": 1}, {"norm": "ln"}),
                                             ({"norm": "gn", "channels_per_group": 1}, {"norm": "in"})])
def test_shared_trials_build_the_same_network_seed_for_seed(alias, canonical):
    """make_norm builds GroupNorm(groups=g) for GN, LN and IN alike: same layers, same names, same initial
    weights from the same seed, same outputs."""
    import keras
    import numpy as np

    from trainer.models import build_model

    def build(kw):
        keras.backend.clear_session()  # as in a trial's fresh process: auto-named layers count from zero
        keras.utils.set_random_seed(3)
        return build_model("resnet8", num_classes=10, input_shape=(16, 16, 3), weight_decay=1e-4, **kw)

    a, b = build(alias), build(canonical)
    assert [(l.__class__.__name__, l.name, l.get_config()) for l in a.layers] == \
        [(l.__class__.__name__, l.name, l.get_config()) for l in b.layers]
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    x = np.random.default_rng(0).normal(size=(4, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(a(x, training=True).numpy(), b(x, training=True).numpy())


def test_results_show_a_shared_run_in_every_study(tmp_path):
    """The run's Parquet rows are written once; status and report readers expand them under the alias."""
    import json

    from results import store
    from results.frames import study_table, trial_results
    from results.studies import find_studies
    from orchestrator.tune.results_writer import config_columns
    from results.records import EpochRow, TrialRow
    from results.shared_runs import PLAN_FILE, expand_shared, report_lines

    NEW_YEAR = datetime(2026, 1, 1, tzinfo=timezone.utc)

    trials = plan("resnet8", {"norms": {"norm": ["bn", "ln"], "batch_size": [32]},
                              "groups": {"norm": ["gn"], "groups": [8, 1], "batch_size": [32]}},
                  seeds=[0])
    runs = [t for t in trials.values() if t.runs]
    assert [t.key for t in runs] == ["bn-b32-s0", "ln-b32-s0", "gn-b32-g8-s0"]
    for t in runs:
        base = config_columns("d", t.key, t.config.to_dict())
        for epoch in range(1, 6):
            metrics = dict(epoch=epoch, train_loss=1.0, train_err=40.0, val_loss=1.0, val_err=50.0 + epoch,
                           val_err_top5=10.0, lr=0.1, epoch_seconds=1.0, images_per_second=100.0)
            store.write_epoch_row(tmp_path, EpochRow.of(base, metrics, attempt=0, node=None, recorded_at=NEW_YEAR))
        store.write_trial_row(tmp_path, TrialRow(
            **base, status="completed", epochs=5, final_val_err=53.0, best_val_err=51.0, error=None,
            studies=t.studies, attempts=1, started_at=NEW_YEAR, ended_at=NEW_YEAR, train_seconds=5.0))
    alias = trials["gn-b32-g1-s0"]
    (tmp_path / PLAN_FILE).write_text(json.dumps({"trials": {alias.key: {
        "config": alias.config.to_dict(), "studies": list(alias.studies), "same_as": "ln-b32-s0",
        "why": "GN with G = 1 is LN"}}}))
    assert sorted(store.read_trials(tmp_path)["trial_key"]) == ["bn-b32-s0", "gn-b32-g8-s0", "ln-b32-s0"]
    epochs, table = expand_shared(tmp_path, store.read_epochs(tmp_path), store.read_trials(tmp_path))
    results = trial_results(epochs, table)
    groups = next(s for s in find_studies(results) if s.name == "groups")
    assert groups.kind == "groups" and set(groups.trial_keys) == {"gn-b32-g8-s0", "gn-b32-g1-s0"}
    row = study_table(results, groups).set_index("groups").loc[1]
    assert row["norm"] == "gn" and row["final_val_err"] == pytest.approx(53.0) and row["complete"]
    assert report_lines(table) == [
        "Shared runs (each computation is trained once; its result appears in every study that includes it):",
        "- `gn-b32-g1-s0` is the run of `ln-b32-s0`: GN with G = 1 is LN", ""]
