"""`coflows_config.json`: the server's settings, in CoFlows' schema, as typed models.

Where the config comes from, in CoFlows' order of precedence:
1. the `coflows_config` environment variable holding the whole JSON (used by containers);
2. the file named by the `config_file` environment variable, or given on the command line;
3. `coflows_config.json` in the current directory (or under `mnt/`, where CoFlows kept it).

Every validation error names the file, the JSON path and the reason.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coflows.errors import ConfigError

log = logging.getLogger("coflows.config")

# Secrets published in CoFlows' templates and docs (root's seeded secret): anyone can read them, so a
# workspace brought over unchanged must not make them the admin key of a server.
PUBLISHED_SECRETS = frozenset({"26499e5e555e9957725f51cc4d400384"})


def _pascal(name: str) -> str:
    special = {"ssl": "SSL", "sku": "SKU", "executor_type": "Type"}
    if name in special:
        return special[name]
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class _Model(BaseModel):
    """CoFlows keys are PascalCase; attributes are snake_case. Unknown keys are kept."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=_pascal, serialization_alias=_pascal),
        populate_by_name=True,
        extra="allow",
    )


class DatabaseConfig(_Model):
    connection: str = "mnt/database.db"
    type: Literal["sqlite", "postgres", "postgresql", "mssql"] = "sqlite"

    @field_validator("type", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class LetsEncryptConfig(_Model):
    """HTTPS with a certificate from an ACME server (Let's Encrypt): on while `Domains` is non-empty (docs/tls.md)."""

    email: str = ""
    staging: bool = True
    domains: list[str] = Field(default_factory=list, description="host names on the certificate (HTTP-01: no "
                               "wildcards); each must reach this server on HttpPort")
    directory: str = Field("", description="ACME directory URL; default Let's Encrypt's, staging or production")
    http_port: int = Field(80, ge=1, le=65535, description="plain HTTP: HTTP-01 challenges, and a 308 redirect "
                           "to HTTPS for everything else")
    https_port: int = Field(0, ge=0, le=65535, description="the HTTPS port named in redirects; 0: Server.Port "
                            "(set it when a proxy or port mapping publishes another)")
    ca_bundle: str = Field("", description="PEM file of the CA to trust for the ACME directory instead of the "
                           "system's (a test CA such as Pebble's)")
    renew_days: float = Field(30.0, gt=0, description="renew when the certificate expires within this many days")

    @field_validator("domains")
    @classmethod
    def _host_names(cls, v: list[str]) -> list[str]:
        from coflows.tls.names import check_domain

        return [check_domain(d) for d in v]

    @model_validator(mode="after")
    def _email_and_domains(self) -> LetsEncryptConfig:
        if self.domains and not self.email.strip():
            raise ValueError("Email is needed with Domains (the ACME account's contact)")
        if self.email.strip() and not self.domains:
            raise ValueError("Domains is needed with Email: the host names to get a certificate for (CoFlows took "
                             "Server.Host; write it here, e.g. \"Domains\": [\"example.org\"])")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.domains)


class ServerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    secret_key: str = ""
    lets_encrypt: LetsEncryptConfig = LetsEncryptConfig()
    threads: int = Field(32, ge=1, le=1024, description="worker threads for user code")
    call_timeout: float = Field(120.0, gt=0, description="seconds a call of user code may take (any language); "
                                "a function's own `timeout` overrides it")
    workflow_concurrency: int = Field(0, ge=0, description="calls of one workflow running at once; 0: threads // 2 "
                                      "(at least 1); past it a call gets 503 with Retry-After")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="largest request body; larger gets 413")
    max_deploy_bytes: int = Field(100 * 1024 * 1024, ge=1024, description="largest workspace archive "
                                  "`coflows build cloud` may upload (POST /flow/cloud/deploy); larger gets 413")
    deploy_access: Literal["admin", "write"] = Field("admin", description="who may deploy a workflow with "
                                                     "`coflows build cloud`: admins only, or also users (never "
                                                     "anonymous) with Write on it; a deploy runs their code with the "
                                                     "server's rights")
    memory_limit: int = Field(0, ge=0, description="MB of resident memory; past it the server drains and the "
                              "supervisor restarts it (0: no limit)")


class CloudConfig(_Model):
    host: str = "localhost:8080"
    secret_key: str = ""
    ssl: bool = False


class GpuConfig(_Model):
    sku: str = ""
    cores: int = 1


class AzureContainerInstanceConfig(_Model):
    """`coflows aci deploy|remove` (coflows/aci.py, docs/azure.md). `Share`, `StorageAccount`, `StorageKey`: an
    Azure File share mounted at /app/mnt; `Image`: the registry-hosted image (else `--image`)."""

    auth_file: str = ""
    dns: str = ""
    region: str = ""
    cores: float = 1
    mem: float = 2
    gpu: GpuConfig = GpuConfig()
    image: str = ""
    share: str = ""
    storage_account: str = ""
    storage_key: str = Field("", repr=False)


class ExecutorConfig(_Model):
    """Where flow tasks run: threads of the server (`local`) or a Dask cluster (`dask`, at `Scheduler`).

    `MaxWorkers` is how many tasks the flow engine keeps running at once: threads for
    `local`, tasks in flight on the cluster for `dask` (default 8 and 1024).
    """

    executor_type: Literal["local", "dask"] = "local"
    scheduler: str = ""
    max_workers: int = Field(8, ge=1)
    lease_seconds: float = Field(15.0, ge=1, le=3600, description="a replica's flow runs and running tasks are "
                                 "leased for this long and renewed every third of it; another replica takes "
                                 "over the runs of one that stopped renewing (killed) once the lease expired")

    @model_validator(mode="after")
    def _dask_needs_a_scheduler(self) -> ExecutorConfig:
        if self.executor_type == "dask":
            if not self.scheduler.strip():
                raise ValueError("Executor.Type 'dask' needs Executor.Scheduler, e.g. \"tcp://host:8786\"")
            if "max_workers" not in self.model_fields_set:
                self.max_workers = 1024
        return self


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


class EnginesConfig(_Model):
    js_timeout_seconds: float = Field(30.0, gt=0)
    js_memory_limit_mb: int = Field(256, ge=16)
    js_isolates: int = Field(default_factory=lambda: min(16, max(2, usable_cores())), ge=1, le=16,
                             description="V8 isolates per workflow (each with the workflow's code and its own "
                             "globals), so JavaScript calls run in parallel and a runaway call holds up only its "
                             "own; default: the usable cores, at least 2")


class PackagesConfig(_Model):
    """Where Pips, Jars and NuGets come from (defaults: PyPI, Maven Central, nuget.org)."""

    nu_get_feeds: list[str] = Field(default_factory=lambda: ["https://api.nuget.org/v3/index.json"])
    maven_repositories: list[str] = Field(default_factory=lambda: ["https://repo1.maven.org/maven2"])
    pip_index_url: str = ""
    install_on_start: bool = Field(True, description="install missing packages when the server starts")

    @property
    def nuget_feeds(self) -> list[str]:
        return self.nu_get_feeds


class OidcConfig(_Model):
    """OpenID Connect login (`GET /auth/oidc/login`): off while `Issuer` is empty."""

    issuer: str = ""
    client_id: str = ""
    client_secret: str = ""
    scopes: str = "openid email profile"
    redirect_url: str = Field("", description="this server's /auth/oidc/callback as the provider knows it; "
                              "default: built from the request")
    create_users: bool = Field(False, description="a verified email without a user becomes a new user "
                               "(no groups); otherwise only existing users may log in")


class AuthConfig(_Model):
    """Users' logins: sessions, lockout after failed passwords, OpenID Connect."""

    session_hours: float = Field(12.0, gt=0, description="a login lasts this long")
    max_failed_logins: int = Field(5, ge=1, description="wrong passwords in a row before the account locks")
    lock_minutes: float = Field(15.0, gt=0, description="how long a locked account stays locked")
    address_failures_per_minute: int = Field(20, ge=1, description="failed logins from one address per minute "
                                             "before it gets 429")
    cache_seconds: float = Field(5.0, ge=0, description="how long a user's key, session and groups are cached; "
                                 "changes made by another process show after at most this")
    oidc: OidcConfig = Field(OidcConfig(), alias="OIDC")


class AgentsConfig(_Model):
    """Agents on replicas sharing one PostgreSQL database (see docs/agents.md)."""

    lease_seconds: float = Field(10.0, ge=1, le=600, description="an agent's owner renews its lease every third "
                                 "of this; another replica takes over when it was not renewed for this long")


class MConfig(_Model):
    """M's change journal (`m_changes`): replayed to a replica whose database connection dropped."""

    journal_hours: float = Field(24.0, gt=0, description="journal rows older than this are pruned")
    journal_rows: int = Field(1_000_000, ge=1000, description="at most about this many journal rows are kept")


class Config(_Model):
    """The whole of `coflows_config.json`."""

    database: DatabaseConfig = DatabaseConfig()
    workflow: str | list[str] = "mnt/package.json"
    jupyter: bool = False
    server: ServerConfig = ServerConfig()
    cloud: CloudConfig = CloudConfig()
    azure_container_instance: AzureContainerInstanceConfig = AzureContainerInstanceConfig()
    executor: ExecutorConfig = ExecutorConfig()
    engines: EnginesConfig = EnginesConfig()
    packages: PackagesConfig = PackagesConfig()
    auth: AuthConfig = AuthConfig()
    agents: AgentsConfig = AgentsConfig()
    m: MConfig = Field(MConfig(), alias="M")

    # Where the config was read from; relative paths in it resolve against `base_dir`.
    source: str = Field("<defaults>", exclude=True)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @property
    def workflow_paths(self) -> list[Path]:
        items = [self.workflow] if isinstance(self.workflow, str) else list(self.workflow)
        return [self.resolve(p) for p in items]

    def resolve(self, path: str | Path) -> Path:
        p = Path(path)
        return p if p.is_absolute() else (self.base_dir / p)

    def state_dir(self) -> Path:
        """Runtime state that is not user data (generated secret key, ...): `<first workspace>/.coflows`."""
        return self.workflow_paths[0].parent / ".coflows"

    def admin_key(self) -> str:
        """The admin secret: `Server.SecretKey`, else `COFLOWS_SECRET_KEY`, else one generated once and kept.

        The sample config ships no secret; a generated key is stored (mode 0600, in a 0700
        `.coflows` folder when we create it) so it survives restarts. The server logs where
        it is, never the key itself.
        """
        if self.server.secret_key in PUBLISHED_SECRETS:
            if not getattr(self, "_warned_published", False):
                object.__setattr__(self, "_warned_published", True)
                log.warning("Server.SecretKey in the config is CoFlows' published sample secret: ignored; the admin "
                            "key is COFLOWS_SECRET_KEY or the generated one in %s", self.state_dir() / "secret_key")
        elif self.server.secret_key:
            return self.server.secret_key
        env = os.environ.get("COFLOWS_SECRET_KEY")
        if env:
            return env
        path = self.state_dir() / "secret_key"
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if path.parent.stat().st_mode & 0o077:  # made earlier by an engine (.coflows/clr): ours, narrowed
                os.chmod(path.parent, 0o700)
            key = secrets.token_hex(16)
            # Written whole, then linked: of two processes starting at once, one key wins and both read it.
            tmp = path.with_name(f".secret_key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key)
            try:
                os.link(tmp, path)
                return key
            except FileExistsError:
                pass
            except OSError:  # a volume without hard links
                os.replace(tmp, path)
                return key
            finally:
                tmp.unlink(missing_ok=True)
        if path.stat().st_mode & 0o077:  # written by an older version, or copied in: owner only
            os.chmod(path, 0o600)
        return path.read_text().strip()


def _json_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or "<root>"


def format_validation_error(source: str, err: ValidationError) -> str:
    """One line per problem: `file: JSON.path: reason`."""
    lines = []
    for e in err.errors():
        lines.append(f"{source}: {_json_path(e['loc'])}: {e['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, source: str, base_dir: Path) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: <root>: expected a JSON object, got {type(data).__name__}")
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(source, e)) from None
    config.source = source
    config.base_dir = base_dir
    return config


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None


def find_config_file(name: str | None = None) -> Path:
    """Locate the config file: an explicit name, `config_file`, or the default, here or under `mnt/`."""
    name = name or os.environ.get("config_file") or "coflows_config.json"
    candidate = Path(name)
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve() if candidate.exists() else candidate
    under_mnt = Path("mnt") / name
    if under_mnt.exists():
        return under_mnt.resolve()
    return candidate


def load_config(name: str | None = None) -> Config:
    """Read the config from the environment or a file (see the module docstring)."""
    env_json = os.environ.get("coflows_config")
    if env_json:
        try:
            data = json.loads(env_json)
        except json.JSONDecodeError as e:
            raise ConfigError(f"$coflows_config:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
        return parse_config(data, "$coflows_config", Path.cwd())
    path = find_config_file(name)
    data = _read_json(path)
    base_dir = path.parent
    # CoFlows keeps the config in mnt/ with "Workflow" relative to the app root.
    if base_dir.name == "mnt" and not (base_dir / str(data.get("Workflow", ""))).exists():
        base_dir = base_dir.parent
    return parse_config(data, str(path), base_dir)
