"""The container image, checked statically (no Docker engine on these machines): multi-stage on
a slim Python 3.11, the runtime package only, a non-root numeric user, nothing written outside
/tmp, and an entrypoint the CLI and the Deployment agree on."""

from __future__ import annotations

import json
import re
import tomllib

from autoscaler.control.cli import _parser
from tests.deploy.support import DEPLOY, ROOT, container, render

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text("utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in lines if line and not line.startswith("#")]


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for op, args in instructions():
        if op == "FROM":
            out.append([])
        out[-1].append((op, args))
    return out


def final(op: str) -> list[str]:
    return [args for o, args in stages()[-1] if o == op]


def test_the_image_builds_in_two_stages_on_slim_python_3_11() -> None:
    bases = [args.split()[0] for stage in stages() for op, args in stage if op == "FROM"]
    assert len(bases) == 2
    assert all(re.fullmatch(r"python:3\.11-slim(-\w+)?", base) for base in bases)
    assert any(op == "COPY" and "--from=build" in args for op, args in stages()[-1])


def test_only_the_runtime_package_goes_in() -> None:
    build = stages()[0]
    copied = {args.split()[0] for op, args in build if op == "COPY"}
    assert copied == {"pyproject.toml", "autoscaler"}
    installs = " ".join(args for op, args in build if op == "RUN")
    assert "pip install" in installs and "[" not in installs  # no extras: not dev, sim, bench
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert project["scripts"]["surge"] == "autoscaler.control.cli:main"


def test_the_process_runs_as_a_numeric_non_root_user() -> None:
    (user,) = final("USER")
    uid, _, gid = user.partition(":")
    assert int(uid) >= 10000 and int(gid or uid) >= 10000
    pod = render("base")
    assert container(pod)["securityContext"]["runAsUser"] == int(uid)


def test_home_caches_and_temporary_files_point_at_tmp_and_bytecode_is_not_written() -> None:
    env = " ".join(final("ENV"))
    for variable in ("HOME", "TMPDIR", "XDG_CACHE_HOME", "MPLCONFIGDIR"):
        assert re.search(rf"\b{variable}=/tmp\b", env), variable
    assert "PYTHONDONTWRITEBYTECODE=1" in env


def test_the_entrypoint_is_surge_run_and_the_deployment_passes_only_its_options() -> None:
    (entrypoint,) = final("ENTRYPOINT")
    assert json.loads(entrypoint) == ["surge", "run"]
    args = container(render("base"))["args"]
    parsed = _parser().parse_args(["run", *args])
    assert parsed.command == "run" and parsed.config == "/etc/surge/config.yaml"
    (default,) = final("CMD")
    assert json.loads(default) == args


def test_the_image_serves_the_port_the_deployment_probes() -> None:
    (port,) = final("EXPOSE")
    assert int(port) == container(render("base"))["ports"][0]["containerPort"]
