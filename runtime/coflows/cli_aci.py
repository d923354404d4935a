"""`coflows aci deploy|remove`: the server in Azure Container Instances, from the `AzureContainerInstance` block.

`--dry-run` needs no Azure: it prints the container group as the JSON the SDK would send (secrets as
`***`) and checks it (coflows/aci.py); bad values exit 2 naming the field. Without it, the Azure SDK
creates (or deletes) the container group and the command waits, with a spinner and a timeout; an
Azure or network error is one line without secrets, exit 1.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console

from coflows.errors import ConfigError, ManifestError

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

aci_app = typer.Typer(help="Azure Container Instances: deploy the server from the AzureContainerInstance block, "
                           "or remove it (docs/azure.md).", no_args_is_help=True)

ConfigArg = Annotated[Optional[str], typer.Argument(help="config file (default: $config_file or coflows_config.json)")]
ResourceGroupOpt = Annotated[Optional[str], typer.Option("--resource-group", "-g",
                                                         help="Azure resource group (default: <workflow ID>-rg)")]
NameOpt = Annotated[Optional[str], typer.Option("--name", "-n",
                                                help="container group name (default: the workflow's Name, lowercased)")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=1, help="seconds to wait for Azure")]

OFFLINE_CHECKS = ("checked here: the Azure SDK model's required fields, the DNS label, names, region spelling, "
                  "CPU and memory within ACI's limits, GPU SKU and count, file share fields, secrets present")
NOT_CHECKED = ("not checkable offline: whether the region offers this GPU SKU or size, the subscription's quota, "
               "that the image exists and can be pulled, that the DNS label is free, the storage key")


def _fail(message: str, code: int) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _quiet_azure() -> None:
    """The SDK logs failed token requests at WARNING, multi-line; errors are reported once, by us."""
    log = logging.getLogger("azure")
    log.addHandler(logging.NullHandler())
    log.propagate = False


def _need_sdk() -> None:
    try:
        import azure.identity  # noqa: F401
        import azure.mgmt.containerinstance  # noqa: F401
    except ImportError as e:
        raise _fail(f"the Azure SDK is not installed ({e.name}): pip install 'coflows[azure]' "
                    "(bin/setup.sh installs it)", 1) from None


def _load(config_file: str | None):  # noqa: ANN202 - coflows.config.Config
    from coflows.config import load_config

    try:
        return load_config(config_file)
    except ConfigError as e:
        raise _fail(str(e), 2) from None


def _wait(label: str, work: Callable[[], Any], timeout: float, secrets: list[str]) -> Any:
    """Run `work` in a thread under a spinner; its error or a timeout becomes one line and exit 1."""
    from coflows.aci import error_line

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = work()
        except BaseException as e:  # noqa: BLE001 - reported below, as one line
            result["error"] = e

    thread = threading.Thread(target=run, name="aci", daemon=True)
    with console.status(label):
        thread.start()
        thread.join(timeout)
    if thread.is_alive():
        raise _fail(f"Azure did not answer within {timeout:g} s ({label}); the operation may still be running "
                    "in Azure (check with `az container show`)", 1)
    if "error" in result:
        e = result["error"]
        if isinstance(e, (ConfigError, ManifestError)):
            raise _fail(str(e), 2)
        raise _fail(error_line(e, secrets), 1)
    return result.get("value")


@aci_app.command()
def deploy(
    config_file: ConfigArg = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print and check the container group; touch no Azure")]
    = False,
    image: Annotated[Optional[str], typer.Option(help="registry-hosted image (default: AzureContainerInstance.Image, "
                                                      "else coflows:latest)")] = None,
    resource_group: ResourceGroupOpt = None,
    name: NameOpt = None,
    timeout: TimeoutOpt = 900,
) -> None:
    """Create (or update) the container group running the coflows server, as CoFlows' `aci deploy`."""
    from coflows import aci

    _need_sdk()
    _quiet_azure()
    cfg = _load(config_file)
    try:
        plan = aci.build(cfg, image=image, resource_group=resource_group, name=name)
    except (ConfigError, ManifestError) as e:
        raise _fail(f"{e} (or pass --resource-group and --name)", 2) from None
    secrets = plan.secrets + aci.auth_secrets(cfg)
    found = aci.problems(cfg, plan)
    notes = list(plan.warnings)
    if warning := aci.auth_file_warning(cfg):
        notes.append(warning)

    if dry_run:
        try:
            text = json.dumps(aci.masked(aci.body(plan.group), secrets), indent=2)
        except Exception as e:  # noqa: BLE001 - a model the SDK cannot serialize is one more problem
            text = None
            found.append(aci.Problem("<container group>", aci.redact(f"the Azure SDK cannot serialize it: {e}",
                                                                     secrets).splitlines()[0]))
        if text is not None:
            out.print(text, markup=False, highlight=False)
        for note in notes:
            console.print(f"[yellow]warning:[/] {aci.redact(note, secrets)}", highlight=False)
        console.print(f"container group '{plan.name}' in resource group '{plan.resource_group}'", highlight=False)
        console.print(OFFLINE_CHECKS, highlight=False)
        console.print(NOT_CHECKED, highlight=False)
    for p in found:
        console.print(f"[bold red]error:[/] {aci.redact(str(p), secrets)}", highlight=False)
    if found:
        raise typer.Exit(2)
    if dry_run:
        return

    for note in notes:
        console.print(f"[yellow]warning:[/] {aci.redact(note, secrets)}", highlight=False)
    try:
        aci.read_auth_file(cfg)
    except ConfigError as e:
        raise _fail(str(e), 2) from None
    group = _wait(f"creating container group {plan.name} in {plan.resource_group}",
                  lambda: aci.deploy(cfg, plan), timeout, secrets)
    ip = getattr(group, "ip_address", None)
    fqdn = getattr(ip, "fqdn", None) or getattr(ip, "ip", None) or "?"
    out.print(f"{plan.name}: {getattr(group, 'provisioning_state', '?')} at http://{fqdn}:{aci.SERVER_PORT}/",
              highlight=False)


@aci_app.command()
def remove(
    config_file: ConfigArg = None,
    resource_group: ResourceGroupOpt = None,
    name: NameOpt = None,
    timeout: TimeoutOpt = 600,
) -> None:
    """Delete the container group (CoFlows deleted the whole resource group; this keeps it and its storage)."""
    from coflows import aci

    _need_sdk()
    _quiet_azure()
    cfg = _load(config_file)
    try:
        rg, group_name = aci.names(cfg, resource_group, name)
        aci.read_auth_file(cfg)
    except (ConfigError, ManifestError) as e:
        raise _fail(str(e), 2) from None
    if not rg or not group_name:
        raise _fail("--resource-group/--name: required (the workflow has no ID or Name to derive them from)", 2)
    _wait(f"deleting container group {group_name} in {rg}", lambda: aci.remove(cfg, rg, group_name), timeout,
          aci.auth_secrets(cfg))
    out.print(f"{group_name}: removed from {rg}", highlight=False)

