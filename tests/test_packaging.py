"""Packaging: the folders install under the one import namespace ``vacelive``, nothing generic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TOP_FOLDERS = ("engine", "annotators", "bridges")


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_installed_under_vacelive():
    config = _setuptools_config()
    assert config["package-dir"] == {f"vacelive.{name}": name for name in TOP_FOLDERS}
    on_disk = sorted(
        "vacelive." + ".".join(init.parent.relative_to(ROOT).parts)
        for name in TOP_FOLDERS for init in (ROOT / name).rglob("__init__.py")
    )
    assert sorted(config["packages"]) == on_disk


def test_imports_resolve_to_the_namespace_outside_the_repository(tmp_path):
    probe = (
        "import importlib.util, vacelive.engine, vacelive.annotators, vacelive.bridges\n"
        "print(vacelive.engine.__name__)\n"
        "print([n for n in ('engine', 'annotators', 'bridges') if importlib.util.find_spec(n)])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["vacelive.engine", "[]"]


def test_console_script_points_into_the_namespace():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"vacelive": "vacelive.engine.cli:main"}
