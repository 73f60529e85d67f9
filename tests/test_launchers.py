"""The launchers in launch/: syntax, refusals, what they hand to cljax.main.

The scripts are run for real, with a stand-in ``python`` (``CLJAX_PYTHON``)
that prints its arguments and environment, and a stand-in ``nvidia-smi``, so
no GPU or second host is needed.
"""

from __future__ import annotations

import ast
import json
import os
import re
import stat
import subprocess

import pytest

from cli_helpers import REPO

LAUNCH = os.path.join(REPO, "launch")
SCRIPTS = ("run.sh", "setup.sh", "test.sh", "multi_gpu.sh", "multi_host.sh",
           "slurm.sbatch")
NOTEBOOK = os.path.join(LAUNCH, "colab_tpu.ipynb")
HOST_VARS = ("COORDINATOR", "NUM_HOSTS", "HOST_ID")


def _executable(path, text: str) -> str:
  path.write_text(text)
  path.chmod(path.stat().st_mode | stat.S_IEXEC)
  return str(path)


@pytest.fixture
def fake_python(tmp_path):
  """A ``python`` that echoes ``-m`` calls and swallows stdin scripts."""
  return _executable(tmp_path / "python", """#!/usr/bin/env bash
if [ "$1" = "-" ]; then cat >/dev/null; echo "device check"; exit 0; fi
echo "ARGS: $*"
echo "ENV: JAX_COORDINATOR_ADDRESS=${JAX_COORDINATOR_ADDRESS:-} \
JAX_NUM_PROCESSES=${JAX_NUM_PROCESSES:-} JAX_PROCESS_ID=${JAX_PROCESS_ID:-}"
echo "XLA_FLAGS: ${XLA_FLAGS:-}"
""")


def _run(script: str, *args: str, env: dict[str, str] | None = None):
  base = {k: v for k, v in os.environ.items() if k not in HOST_VARS}
  base.pop("XLA_FLAGS", None)
  return subprocess.run(["bash", os.path.join(LAUNCH, script), *args],
                        env={**base, **(env or {})}, capture_output=True,
                        text=True, timeout=30)


@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_parse(script):
  process = subprocess.run(["bash", "-n", os.path.join(LAUNCH, script)],
                           capture_output=True, text=True)
  assert process.returncode == 0, process.stderr


def test_multi_host_refuses_missing_variables(fake_python):
  process = _run("multi_host.sh", "--workdir=/tmp/x",
                 env={"CLJAX_PYTHON": fake_python})
  assert process.returncode == 2
  assert "needs COORDINATOR NUM_HOSTS HOST_ID set" in process.stderr
  assert "ARGS" not in process.stdout  # cljax.main never started.
  partial = _run("multi_host.sh", "--workdir=/tmp/x",
                 env={"CLJAX_PYTHON": fake_python, "COORDINATOR": "h:1"})
  assert partial.returncode == 2
  assert "needs NUM_HOSTS HOST_ID set" in partial.stderr


@pytest.mark.parametrize("variables, message", [
    ({"COORDINATOR": "h", "NUM_HOSTS": "2", "HOST_ID": "0"}, "host:port"),
    ({"COORDINATOR": "h:1", "NUM_HOSTS": "2", "HOST_ID": "2"},
     "0 <= HOST_ID < NUM_HOSTS"),
    ({"COORDINATOR": "h:1", "NUM_HOSTS": "two", "HOST_ID": "0"},
     "must be integers"),
])
def test_multi_host_refuses_bad_values(fake_python, variables, message):
  process = _run("multi_host.sh", "--workdir=/tmp/x",
                 env={"CLJAX_PYTHON": fake_python, **variables})
  assert process.returncode == 2 and message in process.stderr


def test_multi_host_needs_a_workdir_and_hands_over(fake_python):
  env = {"CLJAX_PYTHON": fake_python, "COORDINATOR": "10.0.0.1:12355",
         "NUM_HOSTS": "3", "HOST_ID": "1"}
  missing = _run("multi_host.sh", "--config=configs/x.py", env=env)
  assert missing.returncode == 2 and "--workdir" in missing.stderr
  process = _run("multi_host.sh", "--config=configs/x.py:small",
                 "--workdir=/shared/w", env=env)
  assert process.returncode == 0, process.stderr
  assert ("ARGS: -m cljax.main --distributed --config=configs/x.py:small "
          "--workdir=/shared/w") in process.stdout
  assert ("ENV: JAX_COORDINATOR_ADDRESS=10.0.0.1:12355 JAX_NUM_PROCESSES=3 "
          "JAX_PROCESS_ID=1") in process.stdout


def test_multi_gpu_refuses_without_a_working_nvidia_smi(tmp_path, fake_python):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  _executable(bin_dir / "nvidia-smi", "#!/usr/bin/env bash\nexit 9\n")
  process = _run("multi_gpu.sh", "--config=configs/x.py", env={
      "CLJAX_PYTHON": fake_python,
      "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
  assert process.returncode == 2
  assert "nvidia-smi is missing or fails" in process.stderr
  assert "ARGS" not in process.stdout


def test_multi_gpu_sets_the_xla_flag_and_passes_arguments(tmp_path,
                                                          fake_python):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  _executable(bin_dir / "nvidia-smi",
              "#!/usr/bin/env bash\necho '0, NVIDIA H100, 81559 MiB'\n")
  env = {"CLJAX_PYTHON": fake_python,
         "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
  process = _run("multi_gpu.sh", "--config=configs/x.py:gpu", env=env)
  assert process.returncode == 0, process.stderr
  assert "ARGS: -m cljax.main --config=configs/x.py:gpu" in process.stdout
  assert re.search(r"XLA_FLAGS: .*--xla_gpu_enable_latency_hiding_scheduler"
                   r"=true", process.stdout)
  # A user's own setting of the flag is kept, not doubled.
  own = _run("multi_gpu.sh", env={
      **env, "XLA_FLAGS": "--xla_gpu_enable_latency_hiding_scheduler=false"})
  flags_line = next(line for line in own.stdout.splitlines()
                    if line.startswith("XLA_FLAGS: "))
  assert flags_line == ("XLA_FLAGS: "
                        "--xla_gpu_enable_latency_hiding_scheduler=false")


def test_slurm_script_directives_precede_commands():
  lines = open(os.path.join(LAUNCH, "slurm.sbatch")).read().splitlines()
  first_command = next(i for i, line in enumerate(lines)
                       if line.strip() and not line.startswith("#"))
  directives = [i for i, line in enumerate(lines)
                if line.startswith("#SBATCH")]
  # sbatch stops reading #SBATCH lines at the first command.
  assert directives and max(directives) < first_command
  assert any(line.startswith("srun ") and "--distributed" in line
             for line in lines)


def _code_without_magics(source: str) -> str:
  """IPython's ``!cmd`` and ``%magic`` lines as ``pass``, to parse the rest."""
  return "\n".join(
      re.sub(r"^(\s*)[!%].*$", r"\1pass", line)
      for line in source.splitlines())


def test_colab_notebook_structure():
  with open(NOTEBOOK) as f:
    notebook = json.load(f)
  assert notebook["nbformat"] == 4 and notebook["nbformat_minor"] >= 4
  assert notebook["metadata"]["accelerator"] == "TPU"
  cells = notebook["cells"]
  assert {c["cell_type"] for c in cells} == {"markdown", "code"}
  for cell in cells:
    assert isinstance(cell["source"], list) and "metadata" in cell
    if cell["cell_type"] == "code":
      assert cell["outputs"] == [] and cell["execution_count"] is None
      ast.parse(_code_without_magics("".join(cell["source"])))
  code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
  markdown = " ".join("".join(c["source"]) for c in cells
                      if c["cell_type"] == "markdown")
  run = [c for c in code if "-m cljax.main" in c]
  assert len(run) == 1
  assert "--config=configs/rwm_audio.py:small" in run[0]
  assert "--workdir=" in run[0]
  install = next(c for c in code if "pip install" in c)
  assert "-r requirements.txt" in install and "jax[tpu]==" in install
  assert "jax.devices()" in " ".join(code)
  assert any("summary.csv" in c for c in code)
  assert any(".png" in c for c in code)
  assert "Not run in CI" in markdown
  with open(os.path.join(REPO, "requirements.txt")) as f:
    # The notebook reads the pin at run time with this pattern.
    assert re.search(r"^jax==(\S+)", f.read(), re.M)
