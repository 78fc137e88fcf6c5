"""A sweep spec, from YAML file to trials: ``model`` (the pydantic models of every key), ``file`` (reading a spec
file safely and within bounds), ``validation`` and ``problems`` (every problem as one line naming its field),
``plan`` (studies expanded into trials, each run once) and ``dedup`` (trials that compute the same thing). Validated
here at the edge; everything after trusts the types.
"""
