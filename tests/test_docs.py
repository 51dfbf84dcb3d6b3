"""The documentation site (mkdocs.yml, docs/): `mkdocs build --strict` succeeds, so every
API page's `::: module` resolves and no page links to a file that does not exist; and a
broken reference does fail the strict build (the check can fail)."""

import os
import subprocess
import sys

from conftest import require_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build(config: str, site, cwd=ROOT):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", config, "-d", str(site)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_the_site_builds_strictly_with_every_api_page(tmp_path):
    for module in ("mkdocs", "mkdocstrings", "mkdocs_jupyter", "material"):
        require_module(module)
    done = _build("mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr[-3000:]
    cnn = (tmp_path / "site" / "api" / "cnn" / "index.html").read_text()
    assert "LeNet5" in cnn and "forward_features" in cnn  # rendered from the docstrings
    assert (tmp_path / "site" / "notebooks" / "quickstart" / "index.html").exists()


def test_a_broken_reference_fails_the_strict_build(tmp_path):
    require_module("mkdocs")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("See [the guide](guide/missing.md).\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nnav:\n  - index.md\n")
    done = _build("mkdocs.yml", tmp_path / "site", cwd=tmp_path)
    assert done.returncode != 0 and "missing.md" in done.stderr
