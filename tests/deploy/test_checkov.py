"""checkov (and hadolint) find nothing wrong in the rendered manifests, the Dockerfile and the
Bicep, and every check they skip is skipped with a written reason beside the code.

Both tools come with the ``deploy-check`` extra (``make deploy-check``): checkov brings some
300 MB of dependencies and takes half a minute, too much for every ``make test``, so without it
these tests skip. checkov runs with ``--skip-download``: it would otherwise fetch guidelines
from its vendor's service, which these machines cannot (and should not) reach.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import DEPLOY, TREES, rendered_text

REASON_MIN = 20  # characters: a justification, not a placeholder


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed: make deploy-check installs the deploy-check "
                    "extra and runs these checks")
    return found


def checkov(framework: str, *target: str) -> dict[str, Any]:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_UPDATE_CHECK": "TRUE"}
    done = subprocess.run(
        [tool("checkov"), *target, "--framework", framework, "--output", "json", "--quiet",
         "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=300, env=env, check=False)
    report = json.loads(done.stdout)
    if isinstance(report, list):
        (report,) = [r for r in report if r.get("check_type") == framework]
    return dict(report)


def assert_clean(report: dict[str, Any]) -> None:
    summary = report["summary"]
    failed = report["results"].get("failed_checks", [])
    assert [(c["check_id"], c["resource"]) for c in failed] == []
    assert summary["parsing_errors"] == 0 and summary["passed"] > 0
    for skipped in report["results"].get("skipped_checks", []):
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) >= REASON_MIN, (skipped["check_id"], reason)


@pytest.mark.parametrize("tree", TREES)
def test_checkov_passes_the_rendered_manifests(tree: str, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(rendered_text(tree))
    assert_clean(checkov("kubernetes", "--file", str(rendered)))


def test_checkov_passes_the_dockerfile() -> None:
    assert_clean(checkov("dockerfile", "--file", str(DEPLOY / "Dockerfile")))


def test_checkov_passes_the_bicep() -> None:
    report = checkov("bicep", "--directory", str(DEPLOY / "azure"))
    assert_clean(report)
    assert report["summary"]["resource_count"] >= 8


def test_hadolint_passes_the_dockerfile() -> None:
    done = subprocess.run([tool("hadolint"), str(DEPLOY / "Dockerfile")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
