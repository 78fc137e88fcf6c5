"""Sweep results: the Parquet schema, the driver-side writer, readers, and the paper's tables, figures and report.

Python modules live here; each sweep's outputs go to ``results/<sweep>/`` (git-ignored) unless ``--results`` says
otherwise.
"""
