"""The results-store benchmark runs end to end at a tiny size (one trial of 20 epochs, a local folder and the moto S3
server it starts), so it cannot rot between the runs that fill BENCHMARKS.md. No timing is asserted."""
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.append(ROOT)  # bench/ is scripts run from the repository root (python -m bench), not an installed package

from bench.harness import Context  # noqa: E402

MEASURES = ("record an epoch", "status", "report load", "pd.read_parquet", "watch redraw")


@pytest.mark.slow
def test_results_bench_measures_every_variant_on_both_stores(tmp_path, monkeypatch):
    from bench import results

    monkeypatch.setattr(results, "DEFAULT", (1,))
    monkeypatch.setattr(results, "EPOCHS", 20)
    (table,) = results.run(Context(scratch=tmp_path, digits=None, sample=None))
    got = {(r[0], r[2], r[3]) for r in table.rows}
    for store in ("local", "s3"):
        for measure in MEASURES:
            assert {(store, measure, "before"), (store, measure, "per trial")} <= got, table.render()
        assert (store, "status", "old layout") in got
    assert all(float(r[4]) > 0 for r in table.rows), table.render()
    assert any("folding the old layout" in n for n in table.notes), table.notes
