"""The e2e tier: the real `ecsjob operator` process against a Kubernetes API and a moto server.

The Kubernetes API is the emulator of tests/e2e/emulator.py (kmock) unless --kubeconfig names a
real cluster. The operator reaches both the way it would in production: a kubeconfig file and
AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml
from emulator import PEERING_CRD, EmulatorThread

from support.fargate import FakeFargate
from support.moto_server import MotoServer
from support.operator_env import Kube, OperatorProcess

ROOT = Path(__file__).parents[2]
# A resource no operator watches, for the emulator's own tests (test_emulator.py).
PROBE_CRD = {
    "spec": {
        "group": "emulator.test",
        "scope": "Namespaced",
        "names": {"plural": "probes", "singular": "probe", "kind": "Probe"},
        "versions": [{"name": "v1", "subresources": {"status": {}}}],
    }
}


@pytest.fixture(scope="session")
def emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorThread | None]:
    """The in-process Kubernetes API emulator, or None when --kubeconfig names a real cluster."""
    if request.config.getoption("--kubeconfig"):
        yield None
        return
    crds = [
        yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml")) if p.name != "kustomization.yaml"
    ]
    thread = EmulatorThread([*crds, PROBE_CRD, PEERING_CRD]).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def kubeconfig(
    request: pytest.FixtureRequest, emulator: EmulatorThread | None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    given = request.config.getoption("--kubeconfig")
    if given:
        subprocess.run(["kubectl", "--kubeconfig", given, "apply", "-k", str(ROOT / "crds")], check=True)
        return Path(given)
    assert emulator is not None
    return emulator.kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig")


NAMESPACES = ("default", "team", "team-x", "shards", "failover", "events")  # operators watch them by name


@pytest.fixture(scope="session")
def kube(kubeconfig: Path) -> Kube:
    kube = Kube(kubeconfig)
    for namespace in NAMESPACES:
        with contextlib.suppress(kubernetes.client.ApiException):  # exists already (a real cluster)
            kube.core.create_namespace({"metadata": {"name": namespace}})
    return kube


@pytest.fixture(scope="session")
def operator(
    kubeconfig: Path, kube: Kube, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(kubeconfig, moto_server, tmp_path_factory.mktemp("operator"))
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def fargate(moto_server: MotoServer) -> Iterator[FakeFargate]:
    """One moto state for the whole tier: the operator process caches what it registered."""
    fake = FakeFargate()
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def tenant_operator(
    kubeconfig: Path, kube: Kube, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """A shared-cluster install: the tenants' namespaces, no inline clusters, the default family prefix."""
    process = OperatorProcess(kubeconfig, moto_server, tmp_path_factory.mktemp("tenants"), "-n", "team", "-n", "team-x")
    process.start()
    yield process
    process.stop()
