"""Malformed and hostile sweep specs: each is refused at once with one line per problem naming the field, by
``load_spec`` and by ``gnsweep launch`` (exit status 2, no traceback, nothing started)."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.spec.problems import SpecError
from orchestrator.spec.file import load_spec
from tests.support.cli import process_env

BASE = {
    "name": "hostile",
    "dataset": "builtin:digits",
    "model": "resnet8",
    "train": "{epochs: 2, base_lr: 0.1, base_batch: 32}",
    "studies": "{s: {norm: [bn, gn], batch_size: [32]}}",
    "seeds": "[0]",
    "resources": "{cpu: 1, gpu: 0}",
}


def spec(**fields) -> str:
    """The base spec with some top-level fields replaced (value: YAML text) or dropped (value: None)."""
    merged = {**BASE, **fields}
    return "".join(f"{key}: {value}\n" for key, value in merged.items() if value is not None)


def study(text: str, **fields) -> str:
    return spec(studies=f"{{s: {text}}}", **fields)


# (id, YAML text, field the problem is on, a substring of its message or None). "{tmp}" is the test's tmp_path.
CASES = [
    # wrong types
    ("string-epochs", spec(train='{epochs: "100"}'), "train.epochs", "must be an integer, got the string '100'"),
    ("bool-batch-size", study("{norm: [bn], batch_size: [true]}"), "studies.s.batch_size.0", "got the boolean true"),
    ("list-for-train", spec(train="[100, 0.1]"), "train", "must be a mapping"),
    ("list-for-studies", spec(studies="[norms, batch_size]"), "studies", "must be a mapping"),
    ("scalar-grid", study("{norm: gn, batch_size: [32]}"), "studies.s.norm", "must be a list"),
    ("string-augment", spec(train='{augment: "yes"}'), "train.augment", "true or false"),
    ("int-dataset", spec(dataset="42"), "dataset", "must be a string"),
    ("string-seed", spec(seeds='["0"]'), "seeds.0", "must be an integer"),
    ("float-batch-size", study("{norm: [bn], batch_size: [32.0]}"), "studies.s.batch_size.0", "integer"),
    # unknown keys at every level
    ("unknown-top", spec(epochs="100"), "epochs", "unknown field; expected one of name, dataset"),
    ("unknown-train", spec(train="{epochs: 2, lr: 0.1}"), "train.lr", "unknown field"),
    ("unknown-study", study("{norm: [gn], batch_size: [32], group: [8]}"), "studies.s.group", "unknown field"),
    ("unknown-resources", spec(resources="{cpu: 1, gpus: 1}"), "resources.gpus", "unknown field"),
    ("unknown-override", spec(resources="{cpu: 1, by_batch_size: {32: {mem: 1}}}"), "resources.by_batch_size.32.mem",
     "unknown field"),
    ("unknown-defaults", spec(defaults="{group: 8}"), "defaults.group", "unknown field"),
    # missing or empty
    ("missing-name", spec(name=None), "name", "required"),
    ("empty-studies", spec(studies="{}"), "studies", "must not be empty"),
    ("empty-norm-list", study("{norm: [], batch_size: [32]}"), "studies.s.norm", "must not be empty"),
    ("empty-batch-list", study("{norm: [bn], batch_size: []}"), "studies.s.batch_size", "must not be empty"),
    ("empty-groups-list", study("{norm: [gn], groups: [], batch_size: [32]}"), "studies.s.groups", "empty"),
    ("empty-seeds", spec(seeds="[]"), "seeds", "must not be empty"),
    ("empty-dataset", spec(dataset='""'), "dataset", "must not be empty"),
    # impossible groupings
    ("groups-48-seed-cnn", spec(model="seed_cnn", studies="{groups: {norm: [gn], groups: [48], batch_size: [32]}}"),
     "studies.groups.groups", "48 does not divide the 64 channels of seed_cnn"),
    ("defaults-32-resnet8", spec(defaults="{groups: 32}"), "defaults.groups",
     "32 does not divide the 16 channels of resnet8"),
    ("cpg-3-resnet8", spec(studies="{cpg: {norm: [gn], channels_per_group: [3], batch_size: [32]}}"),
     "studies.cpg.channels_per_group", "3 does not divide the 16 channels of resnet8"),
    ("groups-past-channels", study("{norm: [gn], groups: [8, 128], batch_size: [32]}"), "studies.s.groups",
     "128 does not divide the 16 channels of resnet8"),
    ("groups-with-bn", study("{norm: [bn, gn], groups: [8], batch_size: [32]}"), "studies.s.groups",
     "only gn takes groups"),
    ("cpg-with-ln", study("{norm: [ln], channels_per_group: [4], batch_size: [32]}"),
     "studies.s.channels_per_group", "only gn takes channels_per_group"),
    ("groups-and-cpg", study("{norm: [gn], groups: [8], channels_per_group: [4], batch_size: [32]}"), "studies.s",
     "not both"),
    ("defaults-groups-and-cpg", spec(defaults="{groups: 8, channels_per_group: 4}"), "defaults", "not both"),
    # zero and negative values
    ("epochs-0", spec(train="{epochs: 0}"), "train.epochs", "must be >= 1, got 0"),
    ("base-lr-negative", spec(train="{base_lr: -1}"), "train.base_lr", "must be > 0"),
    ("base-lr-nan", spec(train="{base_lr: .nan}"), "train.base_lr", "finite"),
    ("momentum-1", spec(train="{momentum: 1}"), "train.momentum", "must be < 1"),
    ("batch-size-0", study("{norm: [bn], batch_size: [0]}"), "studies.s.batch_size.0", "must be >= 1"),
    ("cpu-0", spec(resources="{cpu: 0}"), "resources.cpu", "must be > 0"),
    ("cpu-inf", spec(resources="{cpu: .inf}"), "resources.cpu", "finite"),
    ("gpu-negative", spec(resources="{cpu: 1, gpu: -1}"), "resources.gpu", "must be >= 0"),
    ("retries-negative", spec(retries="-1"), "retries", "must be >= 0"),
    ("seed-negative", spec(seeds="[-1]"), "seeds.0", "must be >= 0"),
    ("seed-past-numpy", spec(seeds="[4294967296]"), "seeds.0", "must be <="),
    ("seed-past-int32", spec(seeds="[0, 2147483648]"), "seeds.1", "must be <= 2147483647"),  # the tables' int32
    ("replicas-0", spec(replicas="0"), "replicas", "must be >= 1"),
    # GPUs
    ("gpu-1.5", spec(resources="{cpu: 1, gpu: 1.5}"), "resources.gpu", "a fraction of a GPU must be at most 1"),
    ("override-gpu-1.5", spec(resources="{cpu: 1, gpu: 1, by_batch_size: {32: {gpu: 1.5}}}"),
     "resources.by_batch_size.32.gpu", "at most 1"),
    ("override-unknown-batch", spec(resources="{cpu: 1, by_batch_size: {3: {gpu: 0.5}}}"),
     "resources.by_batch_size.3", "no study has batch size 3"),
    ("fractional-gpu-replicas", spec(resources="{cpu: 1, gpu: 0.5}", replicas="2"), "resources.gpu",
     "needs a whole GPU"),
    # huge grids
    ("grid-past-default-max", study("{norm: [bn, ln, in, gn], batch_size: [%s]}" % ", ".join(map(str, range(1, 301)))),
     "studies", "1200 trials, more than max_trials 1000"),
    ("grid-past-max-trials", spec(max_trials="3", seeds="[0, 1]"), "studies", "4 trials, more than max_trials 3"),
    ("max-trials-absurd", spec(max_trials="1000000000"), "max_trials", "must be <= 100000"),
    # not a mapping
    ("yaml-list", "- name: x\n- model: resnet8\n", "(top level)", "got a list"),
    ("yaml-scalar", "just a string\n", "(top level)", "got the string 'just a string'"),
    ("empty-file", "", "(top level)", "got an empty file"),
    ("comments-only", "# nothing here\n", "(top level)", "got an empty file"),
    # YAML that tries to build objects or is not YAML
    ("python-apply-tag", spec(dataset='!!python/object/apply:os.system ["touch {tmp}/pwned"]'), "(top level)",
     "the YAML tag !!python/object/apply:os.system is not allowed"),
    ("python-object-tag", spec(train="!!python/object:trainer.config.TrainSettings {epochs: 1}"), "(top level)",
     "!!python/object:trainer.config.TrainSettings is not allowed"),
    ("python-name-tag", spec(model="!!python/name:os.system"), "(top level)", "is not allowed"),
    ("syntax-error", "name: x\nmodel: resnet8\nstudies: {s: [unclosed\n", "(top level)", "line 4"),
    ("tab-indent", "name: x\nstudies:\n\ts: {}\n", "(top level)", "line 3"),
    ("duplicate-key", spec() + "model: resnet50\n", "(top level)", "the key 'model' is given twice"),
    ("deep-nesting", spec(seeds="[" * 5000 + "]" * 5000), "(top level)", "nested"),
    ("alias-bomb", "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi")) + spec(name="*i"),
     "name", "must be a string, got a list"),
    # paths, names and kinds
    ("dataset-missing", spec(dataset="no/such/dataset"), "dataset", "no/such/dataset does not exist"),
    ("dataset-nul", spec(dataset='"data\\0x"'), "dataset", "data\\x00x"),
    ("name-slash", spec(name="runs/paper"), "name", "letters, digits"),
    ("name-dotdot", spec(name='".."'), "name", "no '..'"),
    ("name-dotdot-inside", spec(name="a..b"), "name", "no '..'"),
    ("name-absolute", spec(name="/etc/passwd"), "name", None),
    ("name-too-long", spec(name="a" * 65), "name", None),
    ("study-name-slash", spec(studies="{a/b: {norm: [bn], batch_size: [32]}}"), "studies.a/b", "letters, digits"),
    ("unknown-model", spec(model="resnet101"), "model", "must be one of seed_cnn, resnet8"),
    ("unknown-norm", study("{norm: [gn, batchnorm], batch_size: [32]}"), "studies.s.norm.1",
     "must be one of bn, gn, ln, in or none, got the string 'batchnorm'"),
    ("duplicate-batch-sizes", study("{norm: [bn], batch_size: [32, 16, 32]}"), "studies.s.batch_size",
     "32 is listed twice"),
    ("duplicate-norms", study("{norm: [gn, gn], batch_size: [32]}"), "studies.s.norm", "'gn' is listed twice"),
    ("duplicate-seeds", spec(seeds="[0, 0]"), "seeds", "listed twice"),
    ("seed-count-zero", spec(seeds="0"), "seeds", "a count of seeds must be 1 to 100, got 0"),
    ("seed-count-huge", spec(seeds="100000000000"), "seeds", "a count of seeds must be 1 to 100, got 100000000000"),
    ("seed-count-float", spec(seeds="2.5"), "seeds", "must be a count of seeds (seeds: 3 is 0, 1, 2) or a list"),
    ("study-seed-count-negative", study("{norm: [bn], batch_size: [32], seeds: -3}"), "studies.s.seeds",
     "a count of seeds must be 1 to 100, got -3"),
]


@pytest.fixture
def write_case(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative dataset paths resolve here

    def write(case_id: str, text: str) -> Path:
        path = tmp_path / f"{case_id}.yaml"
        path.write_text(text.replace("{tmp}", str(tmp_path)))
        return path

    return write


@pytest.mark.parametrize("case_id,text,field,message", CASES, ids=[c[0] for c in CASES])
def test_hostile_spec_is_refused(case_id, text, field, message, write_case, tmp_path):
    path = write_case(case_id, text)
    started = time.monotonic()
    with pytest.raises(SpecError) as e:
        load_spec(path)
    elapsed = time.monotonic() - started
    lines = e.value.problems
    assert lines and str(e.value) == "\n".join(lines)
    assert all(line.startswith(f"{path}: ") and "\n" not in line for line in lines), lines
    on_field = [line for line in lines if line.startswith(f"{path}: {field}: ")]
    assert on_field, f"no problem on {field!r}: {lines}"
    if message is not None:
        assert any(message in line for line in on_field), lines
    assert elapsed < 2, f"{elapsed:.1f}s"
    assert not (tmp_path / "pwned").exists()


def test_missing_and_unreadable_files(tmp_path):
    for path, why in [(tmp_path / "absent.yaml", "No such file"), (tmp_path, "Is a directory")]:
        with pytest.raises(SpecError) as e:
            load_spec(path)
        assert e.value.problems == [f"{path}: (top level): cannot read the spec: {why}" +
                                    ("" if why == "Is a directory" else " or directory")]


def test_not_text_and_too_big(tmp_path):
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(binary)
    big = tmp_path / "big.yaml"
    big.write_text(spec() + "#" * (2 << 20))
    with pytest.raises(SpecError, match="a sweep spec is at most"):
        load_spec(big)


def test_problem_count_is_capped(tmp_path):
    """A spec wrong everywhere gets a bounded report, not thousands of lines."""
    path = tmp_path / "many.yaml"
    path.write_text(study("{norm: [%s], batch_size: [32]}" % ", ".join(f"k{i}" for i in range(500))))
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert 10 <= len(e.value.problems) <= 51
    assert e.value.problems[-1].endswith("more problems not shown")


# The CLI: the same refusals through `gnsweep launch`, with and without --dry-run.
CLI_CASES = ["string-epochs", "unknown-top", "groups-48-seed-cnn", "python-apply-tag", "dataset-missing",
             "name-dotdot", "syntax-error", "yaml-list", "grid-past-default-max"]


def gnsweep_command() -> list[str]:
    script = Path(sys.executable).parent / "gnsweep"
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestrator.cli"]


@pytest.fixture(scope="module")
def gnsweep():
    return gnsweep_command()


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "launch"])
@pytest.mark.parametrize("case_id", CLI_CASES)
def test_cli_refuses_hostile_spec(case_id, dry_run, gnsweep, write_case, tmp_path):
    _, text, field, _ = next(c for c in CASES if c[0] == case_id)
    path = write_case(case_id, text)
    ray_tmp = tmp_path / "ray-tmp"
    env = process_env(RAY_TMPDIR=str(ray_tmp))
    results, data_dir = tmp_path / "results", tmp_path / "data"
    args = [*gnsweep, "launch", str(path), "--results", str(results), "--data-dir", str(data_dir),
            "--no-dashboard", *(["--dry-run"] if dry_run else [])]
    started = time.monotonic()
    run = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    if dry_run and case_id == "dataset-missing":  # a dry run estimates the cost before the data exists
        assert run.returncode == 0 and "note: dataset: no/such/dataset does not exist" in run.stdout, run.stderr
    else:
        assert run.returncode == 2, (run.stdout, run.stderr)
        assert f"{path}: {field}: " in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert "ray" not in run.stdout.lower() and "dashboard" not in run.stdout.lower()
    assert not ray_tmp.exists() and not results.exists() and not data_dir.exists()
    assert not (tmp_path / "pwned").exists()
    assert elapsed < 10, f"{elapsed:.1f}s"


@pytest.mark.parametrize("kind", ["dev-zero", "fifo-no-writer", "fifo-endless-writer"])
def test_cli_reads_at_most_a_spec_whatever_the_file(kind, gnsweep, tmp_path):
    """A device or a FIFO has no size to check beforehand: the read itself is capped, so the launch ends at once with
    one line naming the file (it read ``/dev/zero`` without end, and waited for ever on a FIFO nobody writes)."""
    path, writer = Path("/dev/zero"), None
    if kind != "dev-zero":
        path = tmp_path / "spec.fifo"
        os.mkfifo(path)
    if kind == "fifo-endless-writer":
        writer = subprocess.Popen(["sh", "-c", f"yes '# comment' > '{path}'"], stderr=subprocess.DEVNULL)
    try:
        run = subprocess.run([*gnsweep, "launch", str(path), "--dry-run"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"gnsweep launch {path} did not end within 30 s")
    finally:
        if writer is not None:
            writer.kill()
            writer.wait()
    expected = {"dev-zero": "more than 1048576 bytes", "fifo-no-writer": "no end of the file within 5 s",
                "fifo-endless-writer": "more than 1048576 bytes"}[kind]
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.splitlines() == [f"gnsweep: {path}: (top level): " + run.stderr.split(": (top level): ")[1]
                                       .rstrip("\n")], run.stderr
    assert expected in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "launch"])
@pytest.mark.parametrize("dataset", ["builtin:digits", "prepared"])
def test_a_batch_larger_than_the_training_set_is_refused(dataset, dry_run, gnsweep, digits_dataset, tmp_path):
    """The dry run estimated a batch of 2048 on the 1,437 digits (zero steps an epoch) as if it could run. The
    digits' size is known: a launch refuses before preparing them."""
    name = str(digits_dataset) if dataset == "prepared" else dataset
    path = tmp_path / "big-batch.yaml"
    path.write_text(study("{norm: [bn], batch_size: [32, 2048]}", dataset=name))
    results = tmp_path / "results"
    run = subprocess.run([*gnsweep, "launch", str(path), "--results", str(results), "--data-dir",
                          str(tmp_path / "data"), "--no-dashboard", *(["--dry-run"] if dry_run else [])],
                         cwd=tmp_path, env=process_env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.splitlines() == [f"gnsweep: {path}: studies.s.batch_size.1: 2048 is larger than the 1,437 "
                                       f"training images of {name}"], run.stderr
    assert not results.exists() and not (tmp_path / "data").exists()
