"""The GPU check runs on CPU too (tiny sizes, GPU-only rows marked skipped), through the same worker processes,
dataset generation, pipeline timing and spec as on a GPU, so it cannot rot before someone has a GPU to run it on."""
import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.append(ROOT)  # bench/ is scripts run from the repository root (python -m bench), not an installed package

from bench.harness import Context  # noqa: E402


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_and_marks_gpu_rows_skipped(tmp_path):
    from bench import gpu

    (table,) = gpu.run(Context(scratch=tmp_path, digits=None, sample=None))
    rows = {(r[0], r[5]): r for r in table.rows}
    text = table.render()
    assert table.title.startswith("GPU check (CPU only")
    for precision in ("float32", "mixed_bfloat16"):  # measured by a worker process configured as a trial
        assert float(rows[("train", precision)][6].replace(",", "")) > 0, text
    assert "skipped (GPU only)" in rows[("packed x4", "bf16")][6]
    assert "skipped (GPU only)" in rows[("bf16 vs f32", "bf16/f32")][6]
    assert float(rows[("pipeline", "-")][6].replace(",", "")) > 0 and "300 imgs" in rows[("pipeline", "-")][3]
    assert float(rows[("consumed", "float32")][6].replace(",", "")) > 0, text  # bfloat16 is emulated on CPU
    assert rows[("sweep", "float32")][6] == "skipped (GPU only; --dry-run ok)", text
