"""Azure Container Instances: the container group `coflows aci deploy` creates, and its checks (no CLI here).

Why a module of its own: the container group is built as the Azure SDK's own model
(`azure.mgmt.containerinstance.models.ContainerGroup`) and serialized with the SDK's serializer, so
`--dry-run` prints exactly the body `begin_create_or_update` sends. Everything here works offline;
only `deploy` and `remove` reach Azure.

The SDK (azure-mgmt-containerinstance 10.x) has no `Model.validate()` and sends with client-side
validation off, so `sdk_problems` walks the models' own `_validation` metadata (required fields and
any length/range/pattern rules), and `problems` adds the rules the service enforces that the SDK does
not know (DNS label, names, CPU and memory ranges, GPU SKU and count). Whether a region offers a GPU,
and a subscription's quota, can only be asked of Azure: `deploy` finds out, `--dry-run` cannot.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

from coflows.config import Config
from coflows.errors import ConfigError

MOUNT_PATH = "/app/mnt"
SERVER_PORT = 8080  # the server's port inside the image (bin/image.sh run -p …:8080)
PORTS = (80, 443, SERVER_PORT)  # 80/443: CoFlows' ports (HTTP, and HTTPS with Server.LetsEncrypt)
MASK = "***"
DEFAULT_IMAGE = "coflows:latest"
CONTAINER_NAME = "coflows"
VOLUME_NAME = "workspace"
F = "AzureContainerInstance"  # the config block every field name below starts with

# What ACI accepts for one standard Linux container group (Azure's "resource availability" page:
# 4 vCPU, 16 GB in most regions; some regions allow less). With a GPU the limits grow with the count.
MAX_CPU, MAX_MEM_GB = 4.0, 16.0
GPU_COUNTS = (1, 2, 4)
GPU_LIMITS = {  # SKU -> {count: (max cores, max GB)}
    "K80": {1: (6, 56), 2: (12, 112), 4: (24, 224)},
    "P100": {1: (6, 112), 2: (12, 224), 4: (24, 448)},
    "V100": {1: (6, 112), 2: (12, 224), 4: (24, 448)},
}
# Azure's own message: "It can contain only lowercase letters, numbers and hyphens. The first character
# must be a letter. The last character must be a letter or number. The value must be between 5 and 63
# characters long."
DNS_LABEL = re.compile(r"^[a-z][a-z0-9-]{3,61}[a-z0-9]$")
GROUP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # 1-63, no leading/trailing/double hyphen
RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")  # 1-90; letters, digits, _ - . ( ); not ending in '.'
STORAGE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
SHARE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")  # 3-63, no double hyphen
REGION = re.compile(r"^[A-Za-z][A-Za-z0-9 ]*$")

SECRET_KEY_ENV = "COFLOWS_SECRET_KEY"
STORAGE_KEY_ENV = "AZURE_STORAGE_KEY"
REGISTRY_ENV = ("COFLOWS_REGISTRY_SERVER", "COFLOWS_REGISTRY_USERNAME", "COFLOWS_REGISTRY_PASSWORD")


@dataclass
class Problem:
    """One thing wrong with the deployment, named by the config field, option or REST path it comes from."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class Plan:
    """What `aci deploy` would create: the SDK model, where, and the secrets to mask when printing."""

    group: Any  # azure.mgmt.containerinstance.models.ContainerGroup
    resource_group: str
    name: str
    secrets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- naming

def _workflow_defaults(cfg: Config) -> tuple[str, str]:
    """CoFlows' names: resource group `<workflow ID>-rg`, container group `lower(Name)` (made DNS-safe)."""
    from coflows.workspace.manifest import load_manifest

    manifest = load_manifest(cfg.workflow_paths[0])
    wid = str(getattr(manifest, "ID", "") or "")
    name = re.sub(r"[^a-z0-9-]+", "-", str(getattr(manifest, "Name", "") or wid).lower())
    return (f"{wid}-rg" if wid else ""), re.sub(r"-{2,}", "-", name).strip("-")


def names(cfg: Config, resource_group: str | None, name: str | None) -> tuple[str, str]:
    """The resource group and container group name: the options, else CoFlows' defaults from package.json."""
    if resource_group and name:
        return resource_group, name
    rg, default_name = _workflow_defaults(cfg)
    return resource_group or rg, name or default_name


# ---------------------------------------------------------------------------------------------- secrets

def secret_key(cfg: Config) -> str:
    """The admin key the deployed server gets: `Server.SecretKey`, else `$COFLOWS_SECRET_KEY` (no generated one:
    a key generated inside the container could never be read back)."""
    return cfg.server.secret_key or os.environ.get(SECRET_KEY_ENV, "")


def storage_key(cfg: Config) -> str:
    return cfg.azure_container_instance.storage_key or os.environ.get(STORAGE_KEY_ENV, "")


def registry_credentials(image: str) -> tuple[str, str, str] | None:
    """(server, username, password) from `$COFLOWS_REGISTRY_*`; the server defaults to the image's host."""
    server, user, password = (os.environ.get(k, "") for k in REGISTRY_ENV)
    if not (user or password):
        return None
    return server or image_registry(image) or "", user, password


def image_registry(image: str) -> str | None:
    """The registry host of an image reference (`myreg.azurecr.io/coflows:1` → `myreg.azurecr.io`), if any."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def container_config(cfg: Config) -> str:
    """The config the container runs with (`coflows_config`, as CoFlows did), minus what must not travel:
    the secret key (sent as `COFLOWS_SECRET_KEY`), the Cloud key, and this whole Azure block. The server
    listens on all interfaces at 8080 inside the container."""
    data = cfg.model_dump(by_alias=True, mode="json")
    data.pop(F, None)
    data.setdefault("Server", {}).update({"SecretKey": "", "Host": "0.0.0.0", "Port": SERVER_PORT})
    data.setdefault("Cloud", {})["SecretKey"] = ""
    return json.dumps(data, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------- the model

def build(cfg: Config, *, image: str | None = None, resource_group: str | None = None,
          name: str | None = None) -> Plan:
    """The container group for this config, as the SDK's model. Never raises on bad values: `problems` reports."""
    from azure.mgmt.containerinstance import models as m

    aci = cfg.azure_container_instance
    image = image or aci.image or DEFAULT_IMAGE
    rg, group_name = names(cfg, resource_group, name)
    secrets: list[str] = []
    warnings: list[str] = []

    key = secret_key(cfg)
    config_text = container_config(cfg)
    secrets += [s for s in (key, config_text) if s]
    env = [
        m.EnvironmentVariable(name=SECRET_KEY_ENV, secure_value=key),
        # Secure too: the config may hold a database password or an OIDC client secret.
        m.EnvironmentVariable(name="coflows_config", secure_value=config_text),
    ]

    sku = (aci.gpu.sku or "").strip()
    gpu = None
    if sku:
        known = {s.value.upper(): s.value for s in m.GpuSku}
        gpu = m.GpuResource(count=aci.gpu.cores, sku=known.get(sku.upper(), sku))
    resources = m.ResourceRequirements(requests=m.ResourceRequests(cpu=aci.cores, memory_in_gb=aci.mem, gpu=gpu))

    volumes = mounts = None
    if aci.share or aci.storage_account:
        skey = storage_key(cfg)
        if skey:
            secrets.append(skey)
        volumes = [m.Volume(name=VOLUME_NAME, azure_file=m.AzureFileVolume(
            share_name=aci.share or None, storage_account_name=aci.storage_account or None,
            storage_account_key=skey or None, read_only=False))]
        mounts = [m.VolumeMount(name=VOLUME_NAME, mount_path=MOUNT_PATH, read_only=False)]
    else:
        warnings.append(f"{F}.Share: no file share: the server runs whatever /app/mnt holds in the image, and "
                        "what it writes is lost with the container (set Share, StorageAccount, StorageKey)")

    # With Server.LetsEncrypt the server speaks HTTPS on its port (coflows/tls): the probe follows.
    scheme = "https" if getattr(cfg.server.lets_encrypt, "domains", None) else "http"
    probe = m.ContainerProbe(http_get=m.ContainerHttpGet(path="/health", port=SERVER_PORT, scheme=scheme),
                             initial_delay_seconds=120, period_seconds=30, failure_threshold=5, timeout_seconds=10)
    container = m.Container(
        name=CONTAINER_NAME, image=image, resources=resources,
        ports=[m.ContainerPort(port=p, protocol="TCP") for p in PORTS],
        environment_variables=env, volume_mounts=mounts, liveness_probe=probe)

    credentials = None
    reg = registry_credentials(image)
    if reg:
        server, user, password = reg
        if password:
            secrets.append(password)
        credentials = [m.ImageRegistryCredential(server=server or None, username=user or None,
                                                 password=password or None)]
    elif image_registry(image) is None:
        warnings.append(f"--image: '{image}' names no registry host, so ACI would pull it from Docker Hub; push "
                        "the coflows image to a registry (e.g. myreg.azurecr.io/coflows:1) and pass --image or "
                        f"{F}.Image")

    group = m.ContainerGroup(
        location=aci.region or None,
        containers=[container],
        os_type=m.OperatingSystemTypes.LINUX,
        restart_policy=m.ContainerGroupRestartPolicy.ALWAYS,
        ip_address=m.IpAddress(type=m.ContainerGroupIpAddressType.PUBLIC, dns_name_label=aci.dns or None,
                               ports=[m.Port(port=p, protocol="TCP") for p in PORTS]),
        volumes=volumes,
        image_registry_credentials=credentials,
    )
    return Plan(group=group, resource_group=rg, name=group_name, secrets=secrets, warnings=warnings)


def body(group: Any) -> dict[str, Any]:
    """The JSON body the SDK sends: the same `Serializer(models).body(group, "ContainerGroup")` call as
    `container_groups.begin_create_or_update`."""
    from azure.mgmt.containerinstance import models as m
    from azure.mgmt.containerinstance._serialization import Serializer

    client_models = {k: v for k, v in m.__dict__.items() if isinstance(v, type)}
    return Serializer(client_models).body(group, "ContainerGroup")


def masked(data: Any, secrets: list[str]) -> Any:
    """`data` with every secure value, key and password replaced by `***` (and any secret string anywhere)."""
    sensitive = {"secureValue", "storageAccountKey", "password"}
    if isinstance(data, dict):
        return {k: (MASK if k in sensitive and v else masked(v, secrets)) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v, secrets) for v in data]
    if isinstance(data, str):
        return redact(data, secrets)
    return data


def redact(text: str, secrets: list[str]) -> str:
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


# ---------------------------------------------------------------------------------------------- checks

def sdk_problems(model: Any, path: str = "") -> list[Problem]:
    """The SDK models' own rules (`_validation`: required, and any min/max/pattern), walked recursively; the
    path is the REST one (`properties.containers[0].properties.image`)."""
    from azure.mgmt.containerinstance._serialization import Model, Serializer

    out: list[Problem] = []
    for attr, desc in model._attribute_map.items():
        rules = model._validation.get(attr, {})
        if rules.get("readonly"):
            continue
        where = f"{path}.{desc['key']}" if path else desc["key"]
        value = getattr(model, attr, None)
        if value is None:
            if rules.get("required"):
                out.append(Problem(where, "required by the Azure SDK model, missing"))
            continue
        for rule, limit in rules.items():
            check = Serializer.validation.get(rule)
            if check is not None and check(value, limit):
                out.append(Problem(where, f"breaks the SDK's rule {rule}={limit!r}"))
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if isinstance(item, Model):
                out += sdk_problems(item, f"{where}[{i}]" if isinstance(value, list) else where)
    return out


def _number(value: Any, lo_exclusive: float, hi: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and lo_exclusive < value <= hi


def problems(cfg: Config, plan: Plan) -> list[Problem]:
    """Our checks (named by config field or option) and then the SDK's (named by REST path)."""
    from azure.mgmt.containerinstance import models as m

    aci = cfg.azure_container_instance
    out: list[Problem] = []
    if not aci.region.strip():
        out.append(Problem(f"{F}.Region", "required: the Azure region, e.g. westeurope"))
    elif not REGION.match(aci.region):
        out.append(Problem(f"{F}.Region", f"'{aci.region}' is not a region name (e.g. westeurope)"))
    if not aci.dns:
        out.append(Problem(f"{F}.Dns", "required: the DNS label, served as <Dns>.<Region>.azurecontainer.io"))
    elif not DNS_LABEL.match(aci.dns):
        out.append(Problem(f"{F}.Dns", f"'{aci.dns}' is not a DNS label ACI accepts: 5 to 63 lowercase letters, "
                           "digits and hyphens, starting with a letter, ending with a letter or digit"))
    if not plan.resource_group:
        out.append(Problem("--resource-group", "required (the workflow has no ID to make '<ID>-rg' from)"))
    elif not RESOURCE_GROUP.match(plan.resource_group):
        out.append(Problem("--resource-group", f"'{plan.resource_group}' is not a resource group name: 1 to 90 "
                           "letters, digits, '_', '-', '.', '(', ')', not ending in '.'"))
    if not GROUP_NAME.match(plan.name) or "--" in plan.name:
        out.append(Problem("--name", f"'{plan.name}' is not a container group name: 1 to 63 lowercase letters, "
                           "digits and single hyphens, not starting or ending with a hyphen"))

    sku = (aci.gpu.sku or "").strip()
    max_cpu, max_mem = MAX_CPU, MAX_MEM_GB
    if sku:
        known = [s.value for s in m.GpuSku]
        canonical = {k.upper(): k for k in known}.get(sku.upper())
        if canonical is None:
            out.append(Problem(f"{F}.Gpu.SKU", f"unknown GPU SKU '{sku}'; the Azure SDK knows {', '.join(known)} "
                               "(or leave it empty for no GPU)"))
        elif aci.gpu.cores not in GPU_COUNTS:
            out.append(Problem(f"{F}.Gpu.Cores", f"{aci.gpu.cores} GPUs: ACI offers 1, 2 or 4"))
        else:
            max_cpu, max_mem = GPU_LIMITS.get(canonical, {}).get(aci.gpu.cores, (MAX_CPU, MAX_MEM_GB))
    with_gpu = f" with {aci.gpu.cores} {sku} GPU(s)" if sku and (max_cpu, max_mem) != (MAX_CPU, MAX_MEM_GB) else ""
    if not _number(aci.cores, 0, max_cpu):
        out.append(Problem(f"{F}.Cores", f"{aci.cores} CPU cores: ACI accepts more than 0 and at most "
                           f"{max_cpu:g}{with_gpu}"))
    if not _number(aci.mem, 0, max_mem):
        out.append(Problem(f"{F}.Mem", f"{aci.mem} GB: ACI accepts more than 0 and at most {max_mem:g} GB{with_gpu}"))
    elif abs(round(aci.mem * 10) - aci.mem * 10) > 1e-9:
        out.append(Problem(f"{F}.Mem", f"{aci.mem} GB: ACI takes memory in steps of 0.1 GB"))

    if aci.share or aci.storage_account:
        if not aci.share:
            out.append(Problem(f"{F}.Share", "required with StorageAccount: the Azure File share to mount"))
        elif not SHARE_NAME.match(aci.share) or "--" in aci.share:
            out.append(Problem(f"{F}.Share", f"'{aci.share}' is not a file share name: 3 to 63 lowercase letters, "
                               "digits and single hyphens, starting and ending with a letter or digit"))
        if not aci.storage_account:
            out.append(Problem(f"{F}.StorageAccount", "required with Share: the storage account holding it"))
        elif not STORAGE_ACCOUNT.match(aci.storage_account):
            out.append(Problem(f"{F}.StorageAccount", f"'{aci.storage_account}' is not a storage account name: "
                               "3 to 24 lowercase letters and digits"))
        if not storage_key(cfg):
            out.append(Problem(f"{F}.StorageKey", f"required with Share (or ${STORAGE_KEY_ENV}): ACI mounts "
                               "Azure Files with the account key"))

    if not secret_key(cfg):
        out.append(Problem("Server.SecretKey", f"required (or ${SECRET_KEY_ENV}): the admin key of the deployed "
                           "server; one generated inside the container could not be read back"))
    reg = registry_credentials(plan.group.containers[0].image)
    if reg and not reg[0]:
        out.append(Problem(REGISTRY_ENV[0], "required with registry credentials: the image names no registry host"))
    if reg and not reg[2]:
        out.append(Problem(REGISTRY_ENV[2], "required with COFLOWS_REGISTRY_USERNAME"))
    if not plan.group.containers[0].image.strip():
        out.append(Problem("--image", "required"))
    return out + sdk_problems(plan.group)


# ---------------------------------------------------------------------------------------------- Azure

@dataclass
class AuthFile:
    """CoFlows' AuthFile: `az ad sp create-for-rbac --sdk-auth` output (clientId, clientSecret, subscriptionId,
    tenantId, and optionally the endpoints of a non-public cloud)."""

    client_id: str
    client_secret: str = field(repr=False)
    subscription_id: str
    tenant_id: str
    authority: str | None = None
    management: str | None = None


def read_auth_file(cfg: Config) -> AuthFile | None:
    """The AuthFile named in the config (relative to it), or None when the field is empty."""
    name = cfg.azure_container_instance.auth_file
    if not name:
        return None
    path = cfg.resolve(name)
    where = f"{F}.AuthFile ({path})"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    missing = [k for k in ("clientId", "clientSecret", "subscriptionId", "tenantId")
               if not isinstance(data.get(k), str) or not data.get(k)]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)} (make it with `az ad sp create-for-rbac "
                          "--sdk-auth`)")
    authority = data.get("activeDirectoryEndpointUrl")
    management = data.get("resourceManagerEndpointUrl")
    return AuthFile(data["clientId"], data["clientSecret"], data["subscriptionId"], data["tenantId"],
                    authority.rstrip("/") if isinstance(authority, str) and authority else None,
                    management.rstrip("/") if isinstance(management, str) and management else None)


def auth_file_warning(cfg: Config) -> str | None:
    """The AuthFile holds a client secret: say so when others may read it."""
    name = cfg.azure_container_instance.auth_file
    path = cfg.resolve(name) if name else None
    if path and path.exists() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{F}.AuthFile ({path}): readable by others; it holds a client secret (chmod 600)"
    return None


def client(cfg: Config, *, retries: int = 2, connect_timeout: float = 15.0) -> tuple[Any, list[str]]:
    """A ContainerInstanceManagementClient from the AuthFile (ClientSecretCredential), else
    DefaultAzureCredential with `$AZURE_SUBSCRIPTION_ID`. Returns the client and the secrets to redact."""
    from azure.identity import ClientSecretCredential, DefaultAzureCredential
    from azure.mgmt.containerinstance import ContainerInstanceManagementClient

    transport = {"retry_total": retries, "connection_timeout": connect_timeout, "read_timeout": 60}
    auth = read_auth_file(cfg)
    kwargs: dict[str, Any] = dict(transport)
    if auth is not None:
        credential = ClientSecretCredential(auth.tenant_id, auth.client_id, auth.client_secret,
                                            authority=auth.authority, **transport)
        subscription = auth.subscription_id
        if auth.management:
            kwargs.update(base_url=auth.management, credential_scopes=[auth.management + "/.default"])
        secrets = [auth.client_secret]
    else:
        subscription = os.environ.get("AZURE_SUBSCRIPTION_ID", "")
        if not subscription:
            raise ConfigError(f"{F}.AuthFile: empty, and $AZURE_SUBSCRIPTION_ID is not set: name an auth file "
                              "(az ad sp create-for-rbac --sdk-auth) or set the subscription for "
                              "DefaultAzureCredential")
        credential = DefaultAzureCredential(**transport)
        secrets = [os.environ.get("AZURE_CLIENT_SECRET", "")]
    return ContainerInstanceManagementClient(credential, subscription, **kwargs), [s for s in secrets if s]


def error_line(exc: BaseException, secrets: list[str]) -> str:
    """An Azure error as one line, secrets removed: the code and first line of the service's message."""
    code = getattr(getattr(exc, "error", None), "code", None)
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    if first.startswith("DefaultAzureCredential failed"):
        first += f" (name an auth file in {F}.AuthFile, or sign in with `az login`)"
    return redact(f"Azure: {type(exc).__name__}{f' ({code})' if code else ''}: {first}", secrets)


def deploy(cfg: Config, plan: Plan, **client_kwargs: Any) -> Any:
    """Create or update the container group and wait for Azure to finish; returns the SDK's ContainerGroup."""
    aci_client, _ = client(cfg, **client_kwargs)
    with aci_client:
        return aci_client.container_groups.begin_create_or_update(plan.resource_group, plan.name, plan.group).result()


def remove(cfg: Config, resource_group: str, name: str, **client_kwargs: Any) -> None:
    """Delete the container group (not the resource group: it may hold the storage account)."""
    aci_client, _ = client(cfg, **client_kwargs)
    with aci_client:
        aci_client.container_groups.begin_delete(resource_group, name).result()


def auth_secrets(cfg: Config) -> list[str]:
    """Secrets the Azure calls could echo (the AuthFile's client secret), for redaction; never raises."""
    try:
        auth = read_auth_file(cfg)
    except ConfigError:
        return []
    return [auth.client_secret] if auth else []

