"""`coflows aci deploy|remove`: the container group built with the Azure SDK's models, checked offline.

No Azure is reachable here, so these tests check the definition (`--dry-run`: the JSON the SDK would
send, in the shape of the ACI REST API's container group), the validation (exit 2 naming the field),
that secrets never appear in clear, and that a real attempt with a fake auth file fails fast with one
secret-free line (exit 1). What stays untested is listed in docs/azure.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("azure.mgmt.containerinstance", reason="the 'azure' extra is not installed (bin/setup.sh)")
    pytest.importorskip("azure.identity", reason="the 'azure' extra is not installed (bin/setup.sh)")

ADMIN_KEY = "aci-admin-key-4f1c9e"
STORAGE_KEY = "c3RvcmFnZS1rZXktZm9yLWFjaS10ZXN0cw=="
CLIENT_SECRET = "fake-client-secret-7d2a"
REGISTRY_PASSWORD = "registry-password-91b3"
SECRETS = (ADMIN_KEY, STORAGE_KEY, CLIENT_SECRET, REGISTRY_PASSWORD)
ENV_NAMES = ("COFLOWS_SECRET_KEY", "AZURE_STORAGE_KEY", "AZURE_SUBSCRIPTION_ID", "COFLOWS_REGISTRY_SERVER",
             "COFLOWS_REGISTRY_USERNAME", "COFLOWS_REGISTRY_PASSWORD", "coflows_config", "config_file")


def _aci(**over: Any) -> dict[str, Any]:
    block = {"AuthFile": "", "Dns": "coflows-demo", "Region": "westeurope", "Cores": 2, "Mem": 4,
             "Gpu": {"SKU": "", "Cores": 1}}
    block.update(over)
    return block


def _workspace(tmp_path: Path, aci: dict[str, Any], secret_key: str = ADMIN_KEY) -> Path:
    (tmp_path / "mnt").mkdir(exist_ok=True)
    (tmp_path / "mnt" / "package.json").write_text(json.dumps({"ID": "wf-1234", "Name": "My Flow"}))
    config = {"Workflow": "mnt/package.json", "Server": {"SecretKey": secret_key},
              "Database": {"Connection": "mnt/database.db", "Type": "sqlite"}, "AzureContainerInstance": aci}
    path = tmp_path / "coflows_config.json"
    path.write_text(json.dumps(config))
    return path


def _run(config: Path, *args: str, env: dict[str, str] | None = None, command: str = "deploy",
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "coflows", "aci", command, str(config), *args],
                          cwd=config.parent, env=clean, capture_output=True, text=True, timeout=timeout)


def _dry(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    r = _run(config, "--dry-run", *args, env=env)
    assert r.returncode == 0, r.stderr
    _no_secret(r)
    return json.loads(r.stdout), r.stderr


def _no_secret(r: subprocess.CompletedProcess[str]) -> None:
    for secret in SECRETS:
        assert secret not in r.stdout and secret not in r.stderr, f"a secret was printed: {secret[:6]}…"


def _container(body: dict[str, Any]) -> dict[str, Any]:
    return body["properties"]["containers"][0]["properties"]


def test_dry_run_prints_the_container_group_in_the_rest_shape(tmp_path: Path) -> None:
    body, err = _dry(_workspace(tmp_path, _aci()), "--image", "myreg.azurecr.io/coflows:1")
    assert body["location"] == "westeurope"
    props = body["properties"]
    assert props["osType"] == "Linux" and props["restartPolicy"] == "Always"
    assert props["ipAddress"]["type"] == "Public" and props["ipAddress"]["dnsNameLabel"] == "coflows-demo"
    assert sorted(p["port"] for p in props["ipAddress"]["ports"]) == [80, 443, 8080]
    c = _container(body)
    assert body["properties"]["containers"][0]["name"] == "coflows"
    assert c["image"] == "myreg.azurecr.io/coflows:1"
    assert sorted(p["port"] for p in c["ports"]) == [80, 443, 8080]
    assert c["resources"]["requests"] == {"cpu": 2.0, "memoryInGB": 4.0}  # no "gpu" key without Gpu.SKU
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8080, "scheme": "http"}
    env = {e["name"]: e for e in c["environmentVariables"]}
    assert env["COFLOWS_SECRET_KEY"] == {"name": "COFLOWS_SECRET_KEY", "secureValue": "***"}
    assert env["coflows_config"]["secureValue"] == "***" and "value" not in env["coflows_config"]
    assert "volumes" not in props and "volumeMounts" not in c and "imageRegistryCredentials" not in props
    # CoFlows' default names: <workflow ID>-rg and lower(Name); and the honest list of what was not checked
    assert "container group 'my-flow' in resource group 'wf-1234-rg'" in err
    assert "not checkable offline" in err and "AzureContainerInstance.Share" in err


def test_dry_run_with_a_gpu(tmp_path: Path) -> None:
    body, _ = _dry(_workspace(tmp_path, _aci(Cores=8, Mem=100, Gpu={"SKU": "v100", "Cores": 2})),
                   "--image", "myreg.azurecr.io/coflows:1")
    assert _container(body)["resources"]["requests"] == {"cpu": 8.0, "memoryInGB": 100.0,
                                                         "gpu": {"count": 2, "sku": "V100"}}


def test_dry_run_with_a_file_share_and_registry_credentials(tmp_path: Path) -> None:
    config = _workspace(tmp_path, _aci(Share="coflows-ws", StorageAccount="coflowsstore", StorageKey=STORAGE_KEY,
                                       Image="myreg.azurecr.io/coflows:2"))
    body, err = _dry(config, env={"COFLOWS_REGISTRY_USERNAME": "puller", "COFLOWS_REGISTRY_PASSWORD": REGISTRY_PASSWORD})
    assert body["properties"]["volumes"] == [{"name": "workspace", "azureFile": {
        "shareName": "coflows-ws", "readOnly": False, "storageAccountName": "coflowsstore", "storageAccountKey": "***"}}]
    assert _container(body)["volumeMounts"] == [{"name": "workspace", "mountPath": "/app/mnt", "readOnly": False}]
    assert _container(body)["image"] == "myreg.azurecr.io/coflows:2"
    assert body["properties"]["imageRegistryCredentials"] == [
        {"server": "myreg.azurecr.io", "username": "puller", "password": "***"}]
    assert "AzureContainerInstance.Share" not in err and "names no registry" not in err


def test_secrets_from_the_environment_are_masked_too(tmp_path: Path) -> None:
    config = _workspace(tmp_path, _aci(Share="coflows-ws", StorageAccount="coflowsstore"), secret_key="")
    body, _ = _dry(config, env={"COFLOWS_SECRET_KEY": ADMIN_KEY, "AZURE_STORAGE_KEY": STORAGE_KEY})
    assert body["properties"]["volumes"][0]["azureFile"]["storageAccountKey"] == "***"
    assert {e["name"]: e.get("secureValue") for e in _container(body)["environmentVariables"]}["COFLOWS_SECRET_KEY"] == "***"


def test_the_container_config_carries_no_secret(tmp_path: Path) -> None:
    """What travels in `coflows_config`: the config without the keys and without the Azure block."""
    from coflows import aci
    from coflows.config import load_config

    cfg = load_config(str(_workspace(tmp_path, _aci(StorageKey=STORAGE_KEY, AuthFile="auth.json"))))
    sent = json.loads(aci.container_config(cfg))
    assert ADMIN_KEY not in json.dumps(sent) and STORAGE_KEY not in json.dumps(sent)
    assert "AzureContainerInstance" not in sent
    assert sent["Server"]["Host"] == "0.0.0.0" and sent["Server"]["Port"] == 8080
    assert sent["Workflow"] == "mnt/package.json"


@pytest.mark.parametrize("aci_over, field", [
    ({"Dns": "Bad_Label"}, "AzureContainerInstance.Dns"),
    ({"Dns": "abc"}, "AzureContainerInstance.Dns"),  # under 5 characters
    ({"Mem": 64}, "AzureContainerInstance.Mem"),
    ({"Mem": 2.05}, "AzureContainerInstance.Mem"),  # not a step of 0.1 GB
    ({"Cores": 0}, "AzureContainerInstance.Cores"),
    ({"Gpu": {"SKU": "A100", "Cores": 1}}, "AzureContainerInstance.Gpu.SKU"),
    ({"Gpu": {"SKU": "K80", "Cores": 3}}, "AzureContainerInstance.Gpu.Cores"),
    ({"Gpu": {"SKU": "K80", "Cores": 1}, "Mem": 100}, "AzureContainerInstance.Mem"),  # K80 x1: 56 GB at most
    ({"Region": ""}, "AzureContainerInstance.Region"),
    ({"Share": "coflows-ws"}, "AzureContainerInstance.StorageAccount"),
    ({"Share": "coflows-ws", "StorageAccount": "coflowsstore"}, "AzureContainerInstance.StorageKey"),
])
def test_a_bad_value_exits_2_naming_the_field(tmp_path: Path, aci_over: dict[str, Any], field: str) -> None:
    r = _run(_workspace(tmp_path, _aci(**aci_over)), "--dry-run")
    assert r.returncode == 2, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert any(ln.startswith(f"error: {field}:") for ln in errors), r.stderr
    _no_secret(r)


def test_a_bad_name_and_a_missing_secret_key_name_their_option_and_field(tmp_path: Path) -> None:
    r = _run(_workspace(tmp_path, _aci(), secret_key=""), "--dry-run", "--name", "Not_Valid")
    assert r.returncode == 2
    assert "error: --name: 'Not_Valid'" in r.stderr
    assert "error: Server.SecretKey: required" in r.stderr


def test_a_real_deploy_refuses_bad_values_before_touching_azure(tmp_path: Path) -> None:
    r = _run(_workspace(tmp_path, _aci(Region="", AuthFile="missing.json")))
    assert r.returncode == 2 and "error: AzureContainerInstance.Region:" in r.stderr


def test_the_sdk_models_own_rules_are_checked() -> None:
    """The SDK sends with client-side validation off and has no validate(): we walk its `_validation` rules."""
    from azure.mgmt.containerinstance import models as m

    from coflows import aci

    group = m.ContainerGroup(os_type="Linux", containers=[m.Container(
        name="c", image=None, resources=m.ResourceRequirements(requests=m.ResourceRequests(cpu=1, memory_in_gb=None)))])
    found = {p.field for p in aci.sdk_problems(group)}
    assert found == {"properties.containers[0].properties.image",
                     "properties.containers[0].properties.resources.requests.memoryInGB"}


def test_the_printed_body_is_what_the_sdk_client_would_send(tmp_path: Path) -> None:
    """Same serializer call as `container_groups.begin_create_or_update` (the client is built offline)."""
    from azure.identity import ClientSecretCredential
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient

    from coflows import aci
    from coflows.config import load_config

    cfg = load_config(str(_workspace(tmp_path, _aci(Gpu={"SKU": "K80", "Cores": 1}, Share="coflows-ws",
                                                    StorageAccount="coflowsstore", StorageKey=STORAGE_KEY))))
    plan = aci.build(cfg, image="myreg.azurecr.io/coflows:1")
    client = ContainerInstanceManagementClient(ClientSecretCredential("t", "c", "s"), "sub")
    assert aci.body(plan.group) == client._serialize.body(plan.group, "ContainerGroup")


def _fake_auth(tmp_path: Path) -> str:
    auth = tmp_path / "my.azureauth"
    auth.write_text(json.dumps({"clientId": "00000000-0000-0000-0000-000000000001", "clientSecret": CLIENT_SECRET,
                                "subscriptionId": "00000000-0000-0000-0000-000000000002",
                                "tenantId": "00000000-0000-0000-0000-000000000003"}))
    auth.chmod(0o600)
    return auth.name


@pytest.mark.parametrize("command", ["deploy", "remove"])
def test_a_real_attempt_with_a_fake_auth_file_fails_in_one_clear_line(tmp_path: Path, command: str) -> None:
    """Azure is unreachable here (or, elsewhere, refuses the fake client): one line, no secret, exit 1."""
    config = _workspace(tmp_path, _aci(AuthFile=_fake_auth(tmp_path), Share="coflows-ws",
                                       StorageAccount="coflowsstore", StorageKey=STORAGE_KEY))
    args = ["--image", "myreg.azurecr.io/coflows:1"] if command == "deploy" else []
    r = _run(config, *args, "--timeout", "90", command=command, timeout=150)
    assert r.returncode == 1, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: Azure: "), r.stderr
    assert "Traceback" not in r.stderr
    _no_secret(r)


def test_a_missing_or_incomplete_auth_file_is_a_config_error(tmp_path: Path) -> None:
    config = _workspace(tmp_path, _aci(AuthFile="nowhere.azureauth"))
    r = _run(config, "--image", "myreg.azurecr.io/coflows:1")
    assert r.returncode == 2 and "error: AzureContainerInstance.AuthFile" in r.stderr and "file not found" in r.stderr
    (tmp_path / "nowhere.azureauth").write_text(json.dumps({"clientId": "x", "clientSecret": CLIENT_SECRET}))
    r = _run(config, command="remove")
    assert r.returncode == 2 and "missing subscriptionId, tenantId" in r.stderr
    _no_secret(r)


def test_without_an_auth_file_the_subscription_must_be_named(tmp_path: Path) -> None:
    """DefaultAzureCredential needs $AZURE_SUBSCRIPTION_ID: its absence is a config error, before any Azure call."""
    r = _run(_workspace(tmp_path, _aci()), "--image", "myreg.azurecr.io/coflows:1", command="deploy")
    assert r.returncode == 2 and "error: AzureContainerInstance.AuthFile: empty, and $AZURE_SUBSCRIPTION_ID" in r.stderr
