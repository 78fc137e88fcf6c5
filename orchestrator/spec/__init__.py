"""A sweep spec, from YAML file to trials: ``model`` (the pydantic models of every key), ``file`` (reading a spec
file safely and within bounds), ``validation`` and ``problems`` (every problem as one line naming its field),
``plan`` (studies expanded into trials, each run once) and ``dedup`` (trials that compute the same thing). Validated
here at the edge; everything after trusts the types.
"""
from orchestrator.spec.file import load_spec
from orchestrator.spec.model import SweepSpec
from orchestrator.spec.plan import PlannedTrial, format_plan, plan_trials
from orchestrator.spec.problems import SpecError
from orchestrator.spec.validation import parse_spec

__all__ = ["PlannedTrial", "SpecError", "SweepSpec", "format_plan", "load_spec", "parse_spec", "plan_trials"]
