"""coflows_config.json: typed models, environment overrides, errors that say where."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coflows.config import load_config, parse_config
from coflows.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_repository_config_is_valid_and_has_no_secret():
    config = load_config(str(REPO / "coflows_config.json"))
    assert config.database.type == "sqlite"
    assert config.workflow_paths == [REPO / "mnt" / "package.json"]
    assert config.server.port == 8080
    assert config.server.secret_key == ""
    assert config.cloud.secret_key == ""


def test_full_coflows_schema_is_read():
    data = {
        "Database": {"Connection": "x.db", "Type": "postgres"},
        "Workflow": "mnt/package.json",
        "Jupyter": True,
        "Server": {"Host": "example.org", "Port": 443, "SecretKey": "k",
                   "LetsEncrypt": {"Email": "a@b.c", "Staging": False, "Domains": ["example.org"]}},
        "Cloud": {"Host": "cloud.example.org", "SecretKey": "c", "SSL": True},
        "AzureContainerInstance": {"AuthFile": "my.azureauth", "Dns": "d", "Region": "westeurope",
                                   "Cores": 2, "Mem": 4, "Gpu": {"SKU": "K80", "Cores": 1}},
        "SendGrid": "keep-me",
    }
    c = parse_config(data, "cfg.json", Path("/base"))
    assert c.database.type == "postgres"
    assert c.jupyter is True
    assert c.server.lets_encrypt.email == "a@b.c" and c.server.lets_encrypt.staging is False
    assert c.cloud.ssl is True and c.cloud.host == "cloud.example.org"
    assert c.azure_container_instance.gpu.sku == "K80"
    assert c.azure_container_instance.region == "westeurope"
    assert c.model_extra["SendGrid"] == "keep-me"
    assert c.workflow_paths == [Path("/base/mnt/package.json")]


@pytest.mark.parametrize("data, path, reason", [
    ({"Server": {"Port": "abc"}}, "Server.Port", "valid integer"),
    ({"Server": {"Port": 70000}}, "Server.Port", "less than or equal"),
    ({"Database": {"Type": "oracle"}}, "Database.Type", "'sqlite'"),
    ({"Cloud": {"SSL": "perhaps"}}, "Cloud.SSL", "valid boolean"),
    ({"Server": {"LetsEncrypt": {"Staging": []}}}, "Server.LetsEncrypt.Staging", "valid boolean"),
])
def test_validation_errors_name_file_path_and_reason(data, path, reason):
    with pytest.raises(ConfigError) as e:
        parse_config(data, "my_config.json", Path("."))
    message = str(e.value)
    assert message.startswith(f"my_config.json: {path}: ")
    assert reason in message


def test_invalid_json_names_line_and_column(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('{\n  "Server": {"Port": 1,}\n}')
    with pytest.raises(ConfigError, match=r"bad\.json:2:\d+: invalid JSON"):
        load_config(str(f))


def test_environment_overrides(tmp_path, monkeypatch):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"Server": {"Port": 9001}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("config_file", "other.json")
    assert load_config().server.port == 9001
    monkeypatch.setenv("coflows_config", json.dumps({"Server": {"Port": 9002}}))
    c = load_config()
    assert c.server.port == 9002 and c.source == "$coflows_config"
    monkeypatch.setenv("coflows_config", "{not json")
    with pytest.raises(ConfigError, match=r"\$coflows_config:1:2: invalid JSON"):
        load_config()


def test_generated_admin_key_is_kept_and_private(tmp_path):
    c = parse_config({"Workflow": "mnt/package.json"}, "c.json", tmp_path)
    key = c.admin_key()
    assert len(key) == 32 and key == c.admin_key()
    path = tmp_path / "mnt" / ".coflows" / "secret_key"
    assert path.read_text() == key
    assert path.stat().st_mode & 0o077 == 0


def test_cli_exits_2_without_traceback_on_bad_config(tmp_path):
    bad = tmp_path / "coflows_config.json"
    bad.write_text(json.dumps({"Server": {"Port": "eighty"}}))
    r = subprocess.run([sys.executable, "-m", "coflows", "build", "local", str(bad)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert "Server.Port" in r.stderr and str(bad) in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_coflows_published_sample_secret_is_never_the_admin_key(tmp_path, monkeypatch, caplog):
    """CoFlows' templates ship root's secret; a workspace brought over unchanged must not open the server with it."""
    monkeypatch.delenv("COFLOWS_SECRET_KEY", raising=False)
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mnt" / "package.json").write_text("{}")
    cfg_path = tmp_path / "coflows_config.json"
    cfg_path.write_text(json.dumps({"Workflow": "mnt/package.json",
                                    "Server": {"SecretKey": "26499e5e555e9957725f51cc4d400384"}}))
    cfg = load_config(cfg_path)
    with caplog.at_level("WARNING", logger="coflows.config"):
        key = cfg.admin_key()
    assert key != "26499e5e555e9957725f51cc4d400384" and len(key) == 32
    assert key == (tmp_path / "mnt" / ".coflows" / "secret_key").read_text().strip()
    assert "published sample secret" in caplog.text and "26499e5e" not in caplog.text
