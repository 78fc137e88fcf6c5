"""Offline checks of the deployment files in cluster/: launcher YAMLs against the schema shipped in the Ray wheel,
KubeRay manifests by their fields, SLURM scripts by bash syntax, the Dockerfile's base image against the installed
Ray, and the job runtime env against Ray's own parser. Nothing here starts Ray or touches a cloud."""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
SHARED_LAUNCHERS = ["aws.yaml", "gcp.yaml"]  # a shared NFS mount for data and results
BUCKET_LAUNCHERS = ["aws-bucket.yaml", "gcp-bucket.yaml"]  # only a bucket: no shared file system
LAUNCHER_CONFIGS = SHARED_LAUNCHERS + BUCKET_LAUNCHERS
CREDENTIAL_WORDS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS",
                    "private_key", "aws_secret", "credentials.json")
RAY_MAJOR_MINOR = ".".join(ray.__version__.split(".")[:2])


def load(relative: str):
    return yaml.safe_load((CLUSTER / relative).read_text())


@pytest.fixture(scope="module")
def ray_schema() -> dict:
    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


# --- Ray cluster launcher --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_matches_the_ray_schema(name, ray_schema):
    jsonschema.validate(load(name), ray_schema)


def test_the_schema_rejects_a_misspelled_key(ray_schema):
    config = load("aws.yaml")
    config["head_start_ray_command"] = config.pop("head_start_ray_commands")
    with pytest.raises(jsonschema.ValidationError, match="Additional properties are not allowed"):
        jsonschema.validate(config, ray_schema)
    node = copy.deepcopy(load("aws.yaml"))
    node["available_node_types"]["ray.worker.gpu"]["resource"] = {"GPU": 1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(node, ray_schema)


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_has_a_cpu_head_and_gpu_workers(name):
    config = load(name)
    types = config["available_node_types"]
    head = config["head_node_type"]
    assert head in types
    assert types[head]["resources"].get("GPU", 0) == 0 and types[head]["resources"].get("CPU") == 0
    gpu_workers = [t for n, t in types.items() if n != head and t["resources"].get("GPU", 0) >= 1]
    assert gpu_workers, "no worker type offers a GPU"
    assert all(t["resources"]["CPU"] >= 4 for t in gpu_workers), "a paper trial asks for 4 CPUs with its GPU"
    assert all(t.get("min_workers", 0) >= 1 for t in gpu_workers)


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_installs_gnsweep_and_keeps_the_dashboard_local(name):
    config = load(name)
    assert any("gnsweep" in cmd for cmd in config["setup_commands"])
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    assert "--head" in head_start
    run_options = " ".join(config["docker"]["run_options"])
    assert "RAY_AUTH_MODE=token" in run_options
    assert "~/.ray/auth_token" in config["file_mounts"]


@pytest.mark.parametrize("name", SHARED_LAUNCHERS)
def test_shared_mount_launcher_mounts_the_shared_file_system(name):
    config = load(name)
    run_options = " ".join(config["docker"]["run_options"])
    assert "/mnt/shared" in run_options and any("/mnt/shared" in c for c in config["initialization_commands"])


@pytest.mark.parametrize("name", BUCKET_LAUNCHERS)
def test_bucket_launcher_shares_no_file_system_and_takes_credentials_from_roles(name):
    from trainer.data.cache import CACHE_ENV, LIMIT_ENV

    config = load(name)
    text = json.dumps(config)  # the configuration itself, comments left out
    assert "/mnt/shared" not in text and "nfs" not in text.lower() and "mount -" not in text
    run_options = config["docker"]["run_options"]
    env = dict(o.removeprefix("--env ").split("=", 1) for o in run_options if o.startswith("--env "))
    volumes = dict(o.removeprefix("-v ").split(":", 1) for o in run_options if o.startswith("-v "))
    host = next(h for h, inside in volumes.items() if env[CACHE_ENV].startswith(inside + "/"))
    assert any(host in c for c in config["initialization_commands"]), "the cache folder is made on the host"
    assert float(env[LIMIT_ENV]) > 0
    worker = next(t["node_config"] for n, t in config["available_node_types"].items()
                  if n != config["head_node_type"])
    if config["provider"]["type"] == "aws":
        assert worker["IamInstanceProfile"]["Arn"].startswith("arn:aws:iam::")
    else:
        account = worker["serviceAccounts"][0]
        assert account["email"].endswith(".iam.gserviceaccount.com") and any("cloud-platform" in scope
                                                                              for scope in account["scopes"])
    assert list(config["file_mounts"]) == ["~/.ray/auth_token"]  # no credential file travels
    raw = (CLUSTER / name).read_text()
    assert not any(word in raw for word in CREDENTIAL_WORDS)
    scheme = "s3" if config["provider"]["type"] == "aws" else "gs"
    assert f"--out {scheme}://" in raw and f"--results {scheme}://" in raw and f"dataset: {scheme}://" in raw


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_passes_rays_own_validation(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(load(name)))


def test_gcp_gpu_worker_has_an_accelerator():
    worker = load("gcp.yaml")["available_node_types"]["ray_worker_gpu"]["node_config"]
    assert worker["guestAccelerators"][0]["acceleratorCount"] == 1
    assert {"onHostMaintenance": "TERMINATE"} in worker["scheduling"]


# --- KubeRay -----------------------------------------------------------------------------------------------------

def pod_specs(cluster_spec: dict) -> list[tuple[str, dict]]:
    pods = [("head", cluster_spec["headGroupSpec"]["template"]["spec"])]
    pods += [(g["groupName"], g["template"]["spec"]) for g in cluster_spec["workerGroupSpecs"]]
    return pods


def kuberay_cluster_specs(folder: str = "kuberay"):
    cluster = load(f"{folder}/raycluster.yaml")
    job = load(f"{folder}/rayjob.yaml")
    return [(f"{folder}/raycluster", cluster["spec"]), (f"{folder}/rayjob", job["spec"]["rayClusterSpec"])]


@pytest.mark.parametrize("path, kind", [("kuberay/raycluster.yaml", "RayCluster"), ("kuberay/rayjob.yaml", "RayJob"),
                                        ("kuberay/bucket/raycluster.yaml", "RayCluster"),
                                        ("kuberay/bucket/rayjob.yaml", "RayJob")])
def test_kuberay_manifest_kind(path, kind):
    manifest = load(path)
    assert manifest["apiVersion"] == "ray.io/v1"
    assert manifest["kind"] == kind


@pytest.mark.parametrize("label, spec", kuberay_cluster_specs() + kuberay_cluster_specs("kuberay/bucket"))
def test_kuberay_cluster_spec(label, spec):
    assert ".".join(str(spec["rayVersion"]).split(".")[:2]) == RAY_MAJOR_MINOR
    assert spec["authOptions"] == {"mode": "token"}
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    gpu_groups = spec["workerGroupSpecs"]
    assert gpu_groups
    for group in gpu_groups:
        pod = group["template"]["spec"]
        container = pod["containers"][0]
        for field in ("limits", "requests"):
            assert int(container["resources"][field]["nvidia.com/gpu"]) >= 1
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


@pytest.mark.parametrize("label, spec", kuberay_cluster_specs())
def test_every_kuberay_pod_mounts_the_shared_volume(label, spec):
    claim = load("kuberay/pvc.yaml")
    assert claim["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in claim["spec"]["accessModes"]
    for group, pod in pod_specs(spec):
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            assert "/mnt/results" in mounts, f"{label}/{group} does not mount /mnt/results"
            volume = volumes[mounts["/mnt/results"]["name"]]
            assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
            assert mounts["/opt/gnsweep/data"]["subPath"] == "data"
            assert container["workingDir"] == "/opt/gnsweep"


@pytest.mark.parametrize("label, spec", kuberay_cluster_specs("kuberay/bucket"))
def test_bucket_kuberay_pods_share_no_volume_and_run_as_the_bucket_account(label, spec):
    from trainer.data.cache import CACHE_ENV, LIMIT_ENV

    account = load("kuberay/bucket/serviceaccount.yaml")
    assert account["kind"] == "ServiceAccount" and "secrets" not in account
    annotations = account["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert annotations["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")
    for group, pod in pod_specs(spec):
        assert pod["serviceAccountName"] == account["metadata"]["name"], f"{label}/{group}"
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert not any("persistentVolumeClaim" in v or "nfs" in v for v in volumes.values()), f"{label}/{group}"
        if group == "head":
            continue
        container = pod["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        mount = next(path for path in mounts if env[CACHE_ENV].startswith(path + "/"))
        cache = volumes[mounts[mount]]["emptyDir"]
        assert float(env[LIMIT_ENV]) < float(cache["sizeLimit"].removesuffix("Gi")), "the bound fits the volume"
    raw = "".join((CLUSTER / "kuberay/bucket" / f).read_text() for f in ("raycluster.yaml", "rayjob.yaml",
                                                                          "serviceaccount.yaml"))
    assert not any(word in raw for word in CREDENTIAL_WORDS)


def test_bucket_rayjob_runs_the_spec_from_its_configmap_with_results_in_the_bucket():
    spec = load("kuberay/bucket/rayjob.yaml")["spec"]
    entrypoint = spec["entrypoint"].split()
    assert entrypoint[:2] == ["gnsweep", "launch"]
    assert entrypoint[entrypoint.index("--results") + 1].startswith("s3://")
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in head["containers"][0]["volumeMounts"]}
    volume = next(v for v in head["volumes"] if v["name"] == mounts[str(Path(entrypoint[2]).parent)])
    assert volume["configMap"]["name"] == "gnsweep-spec"
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0


def test_readme_leads_with_the_bucket_only_cluster():
    headings = [line for line in (CLUSTER / "README.md").read_text().splitlines() if line.startswith("## ")]
    assert "bucket" in headings[0].lower() and any("shared" in h.lower() for h in headings[1:])


def test_rayjob_runs_the_sweep_and_cleans_up():
    spec = load("kuberay/rayjob.yaml")["spec"]
    entrypoint = spec["entrypoint"].split()
    assert entrypoint[:3] == ["gnsweep", "launch", "sweeps/paper.yaml"]
    assert entrypoint[entrypoint.index("--results") + 1] == "/mnt/results"
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    assert (ROOT / entrypoint[2]).is_file()


@pytest.mark.parametrize("path", ["kuberay/rayjob.yaml", "kuberay/bucket/rayjob.yaml"])
def test_a_stopped_rayjob_gives_the_driver_the_stop_window_of_ray_job_submit(path):
    """The window between SIGTERM and SIGKILL that tests/cluster/test_ray_job.py shows gnsweep's clean stop needs."""
    job_env = yaml.safe_load(load(path)["spec"]["runtimeEnvYAML"])["env_vars"]
    assert job_env["RAY_JOB_STOP_WAIT_TIME_S"] == load("runtime_env.yaml")["env_vars"]["RAY_JOB_STOP_WAIT_TIME_S"]
    assert int(job_env["RAY_JOB_STOP_WAIT_TIME_S"]) >= 30


# --- SLURM -------------------------------------------------------------------------------------------------------

SBATCH = ["slurm/sweep.sbatch", "slurm/sweep-manual.sbatch"]


@pytest.mark.parametrize("name", SBATCH)
def test_sbatch_script_is_valid_bash_and_runs_the_sweep(name):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not installed")
    path = CLUSTER / name
    subprocess.run([bash, "-n", str(path)], check=True)
    text = path.read_text()
    assert re.search(r"gnsweep launch sweeps/paper\.yaml --address \S+ --results \"\$\{SHARED\}/results\"", text)
    assert "--dashboard-host=127.0.0.1" in text
    assert "export RAY_AUTH_MODE=token" in text
    assert "#SBATCH --nodes=" in text


def test_symmetric_run_script_uses_symmetric_run():
    text = (CLUSTER / "slurm/sweep.sbatch").read_text()
    assert "ray symmetric-run --address" in text and "--min-nodes" in text


def test_manual_script_starts_head_and_workers():
    text = (CLUSTER / "slurm/sweep-manual.sbatch").read_text()
    assert re.search(r"ray start --head .*--block &", text, re.S)
    assert re.search(r"ray start --address .*--block &", text, re.S)


# --- Docker ------------------------------------------------------------------------------------------------------

def test_dockerfile_builds_on_the_installed_ray_gpu_image():
    text = (CLUSTER / "docker/Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.M).group(1)
    match = re.fullmatch(rf"rayproject/ray:{re.escape(ray.__version__)}(?:-py3(\d+))?-gpu", base)
    assert match, f"base image {base} is not rayproject/ray:{ray.__version__}[-py3XX]-gpu"
    requires = re.search(r'requires-python\s*=\s*">=3\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    if match.group(1) and requires:
        assert int(match.group(1)) >= int(requires.group(1)), "the image's Python is older than requires-python"
    assert f"ray[default,tune]=={ray.__version__}" in text
    assert "tensorflow[and-cuda]" in text
    assert "COPY" in text and "/opt/gnsweep" in text and "WORKDIR /opt/gnsweep" in text


def test_docker_build_context_keeps_the_results_package():
    ignore = (CLUSTER / "docker/Dockerfile.dockerignore").read_text().split()
    assert {".git", ".venv", "data", "results/*", "!results/*.py"} <= set(ignore)


# --- Runtime env -------------------------------------------------------------------------------------------------

def test_runtime_env_is_accepted_by_ray():
    from ray.runtime_env import RuntimeEnv

    loaded = load("runtime_env.yaml")
    env = RuntimeEnv(**loaded)
    assert env["env_vars"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert env["env_vars"]["TF_CPP_MIN_LOG_LEVEL"] == "2"


def test_runtime_env_merges_with_the_drivers_own():
    """Inside a job, gnsweep's ray.init(runtime_env={"env_vars": WORKER_ENV}) is merged with the job's runtime env.
    Ray refuses a merge that sets an env var twice unless the job sets RAY_OVERRIDE_JOB_RUNTIME_ENV=1."""
    from ray.runtime_env.runtime_env import _merge_runtime_env

    from orchestrator.tune.run import WORKER_ENV

    job = load("runtime_env.yaml")
    driver = {"env_vars": dict(WORKER_ENV)}
    override = job["env_vars"].get("RAY_OVERRIDE_JOB_RUNTIME_ENV") == "1"
    if set(job["env_vars"]) & set(WORKER_ENV):
        assert _merge_runtime_env(job, driver, override=False) is None
        assert override, "the job env repeats the driver's keys, so it must set RAY_OVERRIDE_JOB_RUNTIME_ENV=1"
    merged = _merge_runtime_env(job, driver, override=override)
    assert merged is not None
    assert merged["env_vars"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert merged["excludes"] == job["excludes"]


def test_runtime_env_upload_excludes_outputs_but_not_code(tmp_path):
    from ray._private.runtime_env.packaging import _zip_files

    files = ["results/store.py", "results/paper/epochs/part.parquet", "data/tiny/train-0.tfrecord", "data/x.zip",
             ".venv/bin/python", ".git/HEAD", "orchestrator/cli.py", "sweeps/paper.yaml"]
    tree = tmp_path / "repo"
    for f in files:
        (tree / f).parent.mkdir(parents=True, exist_ok=True)
        (tree / f).write_text("x")
    out = tmp_path / "pkg.zip"
    _zip_files(str(tree), load("runtime_env.yaml")["excludes"], str(out), include_gitignore=False)
    assert sorted(zipfile.ZipFile(out).namelist()) == ["orchestrator/cli.py", "results/store.py", "sweeps/paper.yaml"]
