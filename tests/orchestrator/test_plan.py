"""plan_trials directly: each trial once, with every study it belongs to, under a readable and stable key."""
import pytest

from orchestrator.spec.plan import count_trials, format_plan, plan_trials
from orchestrator.spec.validation import parse_spec
from trainer.config import TrainSettings

SPEC = {"name": "p", "dataset": "builtin:digits", "model": "resnet8", "train": {"epochs": 3, "base_batch": 32},
        "studies": {"norms": {"norm": ["bn", "ln", "in", "gn"], "batch_size": [32]},
                    "batch": {"norm": ["bn", "gn"], "batch_size": [32, 2]},
                    "groups": {"norm": ["gn"], "groups": [16, 8, 1], "batch_size": [32]},
                    "cpg": {"norm": ["gn"], "channels_per_group": [2], "batch_size": [32]}},
        "seeds": [0, 1], "defaults": {"groups": 8}}


def test_shared_trials_run_once_with_every_study():
    trials = plan_trials(parse_spec(SPEC))
    by_key = {t.key: t.studies for t in trials}
    assert len(by_key) == len(trials)
    assert [t.key for t in trials if t.config.seed == 0] == [
        "bn-b32-s0", "ln-b32-s0", "in-b32-s0", "gn-b32-g8-s0", "bn-b2-s0", "gn-b2-g8-s0", "gn-b32-g16-s0",
        "gn-b32-g1-s0", "gn-b32-cpg2-s0"]
    assert by_key["bn-b32-s1"] == ("norms", "batch")
    assert by_key["gn-b32-g8-s0"] == ("norms", "batch", "groups")  # the default G = 8 is also in the groups grid
    assert by_key["gn-b2-g8-s1"] == ("batch",) and by_key["gn-b32-cpg2-s1"] == ("cpg",)
    assert len(trials) == 2 * 9
    assert count_trials(parse_spec(SPEC), 1000) == len(trials)


def test_a_study_may_take_its_own_seeds():
    studies = {**SPEC["studies"], "norms": {**SPEC["studies"]["norms"], "seeds": 3}}
    trials = {t.key: t.studies for t in plan_trials(parse_spec({**SPEC, "studies": studies, "seeds": 1}))}
    assert trials["bn-b32-s2"] == ("norms",) and trials["bn-b32-s0"] == ("norms", "batch")
    assert "bn-b2-s1" not in trials and "gn-b32-g16-s1" not in trials
    assert len(trials) == 9 + 2 * 4 == count_trials(parse_spec({**SPEC, "studies": studies, "seeds": 1}), 1000)


def test_configs_carry_the_spec_settings():
    spec = parse_spec({**SPEC, "replicas": 2})
    trials = {t.key: t.config for t in plan_trials(spec)}
    gn = trials["gn-b32-g16-r2-s1"]
    assert (gn.model, gn.norm, gn.batch_size, gn.groups, gn.channels_per_group, gn.seed, gn.replicas) == \
        ("resnet8", "gn", 32, 16, None, 1, 2)
    assert gn.train == TrainSettings(epochs=3, base_batch=32)
    assert trials["ln-b32-r2-s0"].groups is None and trials["ln-b32-r2-s0"].channels_per_group is None


@pytest.mark.parametrize("limit,expected", [(17, 18), (5, 8)])
def test_count_stops_past_the_limit(limit, expected):
    """The count is exact up to the limit and a lower bound past it (the norms study alone holds 8 trials)."""
    assert count_trials(parse_spec(SPEC), limit) == expected


def test_format_plan_counts_per_study():
    spec = parse_spec(SPEC)
    text = format_plan(spec, plan_trials(spec))
    assert text.splitlines()[0] == "sweep p: 18 trials of resnet8, 3 epochs each (16 runs: 2 share another trial's run)"
    assert text.splitlines()[-1] == "per study: norms 8, batch 8, groups 6, cpg 2"
