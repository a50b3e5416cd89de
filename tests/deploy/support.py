"""Shared pieces of the deployment tests: where deploy/ is, and the kustomize renderings.

Callers: tests/deploy/test_*.py. Rendering shells out to ``kubectl kustomize`` (kubectl is on
the development and CI machines); without it, the tests that need a rendering skip and say so.
Each rendering is made once per test session: kubectl takes a fraction of a second per call,
and every test reads the same three trees.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZE = DEPLOY / "kubernetes"
TREES = ("base", "overlays/dry-run", "overlays/prometheus-operator")
Obj = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed: cannot render the kustomize trees")
    return found


@functools.cache
def _render(tree: str) -> tuple[Obj, ...]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(KUSTOMIZE / tree)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {tree} failed:\n{done.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def render(tree: str) -> list[Obj]:
    """The objects ``kubectl kustomize deploy/kubernetes/<tree>`` prints (fresh copies)."""
    import copy

    return copy.deepcopy(list(_render(tree)))


def rendered_text(tree: str) -> str:
    return yaml.safe_dump_all(render(tree), sort_keys=False)


def only(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind
             and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def container(objects: list[Obj]) -> Obj:
    deployment = only(objects, "Deployment")
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_of(objects: list[Obj], pod_name: str = "surge-6d4cf56db6-x2x7k") -> dict[str, str]:
    """The container's environment as the kubelet would set it: literal values, and the
    downward-API fields (the pod's name and namespace) filled in."""
    deployment = only(objects, "Deployment")
    fields = {"metadata.name": pod_name, "metadata.namespace": deployment["metadata"]["namespace"]}
    env: dict[str, str] = {}
    for item in container(objects).get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def config_text(objects: list[Obj]) -> str:
    """The configuration file the Deployment mounts and passes to ``surge run --config``."""
    deployment = only(objects, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    args = container(objects)["args"]
    path = Path(args[args.index("--config") + 1])
    mount = next(m for m in container(objects)["volumeMounts"]
                 if path.is_relative_to(m["mountPath"]))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    cm = only(objects, "ConfigMap", volume["configMap"]["name"])
    return str(cm["data"][str(path.relative_to(mount["mountPath"]))])


def walk(value: object) -> Iterator[object]:
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
