"""The installed commands: every ``[project.scripts]`` entry names a ``main(argv=None)``, and
a non-editable ``pip install .`` into a fresh environment gives commands that run from
another folder, on the installed copy (not the clone), with the page's files shipped."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import torch

from asr.inference.checkpoint import checkpoint_meta
from models import tiny_untrained_model

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_command_is_a_main(name):
    module, _, function = SCRIPTS[name].partition(":")
    assert module.startswith(("asr.cli.", "asr.runtime.")) and function == "main"
    main = getattr(importlib.import_module(module), function)
    assert list(inspect.signature(main).parameters) == ["argv"], f"{name}: main(argv=None) expected"


def test_every_command_line_module_is_installed():
    """A new ``asr/cli`` module with a ``main`` gets its command too."""
    modules = {f"asr.cli.{p.stem}" for p in (ROOT / "asr" / "cli").glob("*.py") if "\ndef main(" in p.read_text()}
    assert modules == {target.partition(":")[0] for target in SCRIPTS.values()} - {"asr.runtime.transcribe"}


def test_the_clone_wrappers_call_the_commands():
    for wrapper, module in (("train.py", "asr.cli.train"), ("transcribe.py", "asr.cli.transcribe")):
        assert f"from {module} import main" in (ROOT / wrapper).read_text()
        assert SCRIPTS[f"asr-{Path(wrapper).stem}"] == f"{module}:main"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with the project installed from a copy of the source (a
    wheel built by pip, no editable link); its other packages are the clone's ``.venv``'s,
    reached through a path line (pip's copy of torch would take minutes and 6 GB)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "asr", source / "asr", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # a path line, not the clone's .pth files: the clone's editable asr stays out of sight
    (site / "clone-packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    pip += ["--no-build-isolation", "--ignore-installed", "--no-index", str(source)]
    subprocess.run(pip, check=True, cwd=work, timeout=300)
    return venv


def run(venv: Path, *command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_installed_copy_is_used_with_its_page(installed, tmp_path):
    code = "import asr.serving, pathlib; print(pathlib.Path(asr.serving.__file__).parent)"
    done = run(installed, str(installed / "bin" / "python"), "-c", code, cwd=tmp_path)
    package = Path(done.stdout.strip())
    assert done.returncode == 0 and package.is_relative_to(installed), done.stderr
    assert {"index.html", "page.js", "capture.js"} <= {p.name for p in (package / "page").iterdir()}


def test_installed_commands_run_from_another_folder(installed, tmp_path):
    for name in SCRIPTS:
        assert (installed / "bin" / name).is_file(), f"{name} was not installed"
    done = run(installed, "asr-serve", "--help", cwd=tmp_path)
    assert done.returncode == 0 and "usage: asr-serve" in done.stdout, done.stderr
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'bash scripts/setup.sh'")
    recipe, tokenizer, model = tiny_untrained_model()
    torch.save({**checkpoint_meta(recipe, tokenizer), "state_dict": model.state_dict()}, tmp_path / "model.pt")
    subprocess.run(["espeak-ng", "-w", str(tmp_path / "fox.wav"), "the quick brown fox"], check=True)
    done = run(installed, "asr-transcribe", "--model", "model.pt", "fox.wav", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("fox\t") and len(done.stdout.split("\t")[1].strip()) > 0


def test_pictures_without_matplotlib_name_the_command_that_installs_it(tmp_path):
    """In a clone's environment, with matplotlib hidden, the picture command refuses at once
    (torch never imported, no model read) with the one command that works from the clone."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from asr.cli.plot import main\n"
        "status = main(['transcript', '--model', 'model.pt', 'a.wav', '--out', 'a.png'])\n"
        "print(status, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["1", "False"], done.stderr
    hint = done.stderr.strip().removeprefix("error: pictures need matplotlib: ")
    if Path(sys.prefix) == ROOT / ".venv":
        assert hint == ".venv/bin/pip install matplotlib"
    command = hint.split()
    assert command[1:] in (["install", "matplotlib"], ["-m", "pip", "install", "matplotlib"])
    assert (ROOT / command[0]).exists()  # the pip (or python) it names is there
