"""HTTPS from an ACME server, end to end against Pebble (Let's Encrypt's test CA) on loopback.

Pebble validates HTTP-01 for real: it resolves the domains through pebble-challtestsrv (DNS only,
every name -> 127.0.0.1) and fetches `/.well-known/acme-challenge/<token>` from the coflows
server's own HTTP port. Its certificates live 90 s here, so the server renews during the test.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from conftest import ADMIN_KEY, free_port, new_workspace

PEBBLE_VERSION = "v2.10.3"
PEBBLE_MODULE = "github.com/letsencrypt/pebble/v2"
GOBIN = Path(os.environ.get("COFLOWS_GO_BIN", "/var/cache/coflows/go-bin"))
FIXTURE = Path(__file__).parent / "fixtures" / "pebble" / "pebble-config.json"
DOMAINS = ["coflows.test", "www.coflows.test"]
BAD_DOMAIN = "nowhere.coflows.test"
VALIDITY = 90  # seconds a Pebble certificate lives
RENEW_BEFORE = 60  # seconds before expiry the server renews: so 30 s after each issuance

CALC = '''
def Add(x: int, y: int) -> int:
    return x + y
'''

pytestmark = pytest.mark.timeout(600)


def _unavailable(reason: str) -> None:
    """Skip with the reason, except under CI, which installs go and must not skip this silently."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: this test must run)")
    pytest.skip(reason)


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None)
    if go is None:
        _unavailable("go is not installed: cannot build pebble")
    return go


def _pebble_binaries(go: str) -> tuple[Path, Path]:
    pebble, challtestsrv = GOBIN / "pebble", GOBIN / "pebble-challtestsrv"
    stamp = GOBIN / f".pebble-{PEBBLE_VERSION}"
    if not (pebble.exists() and challtestsrv.exists() and stamp.exists()):
        GOBIN.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([go, "install", f"{PEBBLE_MODULE}/cmd/pebble@{PEBBLE_VERSION}",
                            f"{PEBBLE_MODULE}/cmd/pebble-challtestsrv@{PEBBLE_VERSION}"],
                           env={**os.environ, "GOBIN": str(GOBIN)}, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            _unavailable(f"go cannot build pebble {PEBBLE_VERSION}: {r.stderr.strip()[-800:]}")
        stamp.touch()
    return pebble, challtestsrv


def _pebble_module(go: str, tmp: Path) -> Path:
    """The module's source (its test certificates), from the Go module cache."""
    r = subprocess.run([go, "mod", "download", "-json", f"{PEBBLE_MODULE}@{PEBBLE_VERSION}"], cwd=tmp,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        _unavailable(f"go cannot download the pebble module: {r.stderr.strip()[-800:]}")
    return Path(json.loads(r.stdout)["Dir"])


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.args[0]} did not listen on {port} in {timeout} s:\n{log.read_text()}")


class Pebble:
    """pebble-challtestsrv (DNS only) and pebble, on free loopback ports."""

    def __init__(self, tmp: Path) -> None:
        go = _go()
        pebble, challtestsrv = _pebble_binaries(go)
        module = _pebble_module(go, tmp)
        self.ca_bundle = module / "test" / "certs" / "pebble.minica.pem"  # signs pebble's own HTTPS
        self.dns_port, self.dns_mgmt_port = free_port(), free_port()
        self.port, self.mgmt_port, self.http_port = free_port(), free_port(), free_port()
        fields = {"listen_port": self.port, "management_port": self.mgmt_port, "module": module,
                  "http_port": self.http_port, "unused_tls_port": free_port(), "validity_seconds": VALIDITY}
        text = FIXTURE.read_text()
        for key, value in fields.items():
            text = text.replace("{" + key + "}", str(value))
        config = tmp / "pebble-config.json"
        config.write_text(text)
        self.procs: list[subprocess.Popen] = []
        self.dns_log = tmp / "challtestsrv.log"
        self.log = tmp / "pebble.log"
        dns = subprocess.Popen(
            [str(challtestsrv), "-dnsserver", f"127.0.0.1:{self.dns_port}",
             "-management", f"127.0.0.1:{self.dns_mgmt_port}", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
             "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""],
            stdout=open(self.dns_log, "wb"), stderr=subprocess.STDOUT)
        self.procs.append(dns)
        _wait_port(self.dns_mgmt_port, dns, self.dns_log)
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        env.pop("PEBBLE_VA_ALWAYS_VALID", None)  # never: the proof is what is tested
        proc = subprocess.Popen([str(pebble), "-config", str(config), "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                                stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, env=env, cwd=module)
        self.procs.append(proc)
        _wait_port(self.port, proc, self.log)
        _wait_port(self.mgmt_port, proc, self.log)
        self.directory = f"https://127.0.0.1:{self.port}/dir"
        with httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca_bundle))) as c:
            assert "newOrder" in c.get(self.directory).json()
            self.root_pem = c.get(f"https://127.0.0.1:{self.mgmt_port}/roots/0").text
        self.root = tmp / "pebble-root.pem"
        self.root.write_text(self.root_pem)

    def servfail(self, host: str) -> None:
        """Make `host` resolve nowhere (SERVFAIL) for Pebble's validation."""
        httpx.post(f"http://127.0.0.1:{self.dns_mgmt_port}/set-servfail", json={"host": host}).raise_for_status()

    def close(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory):
    p = Pebble(tmp_path_factory.mktemp("pebble"))
    try:
        yield p
    finally:
        p.close()


class TlsServer:
    """`coflows server` with Server.LetsEncrypt pointed at Pebble."""

    def __init__(self, root: Path, pebble: Pebble, domains: list[str], http_port: int, *args: str) -> None:
        self.ws = new_workspace(root)
        self.ws.add_query("Calc.py", CALC)
        self.port, self.http_port, self.pebble = free_port(), http_port, pebble
        self.ws.config["Server"]["LetsEncrypt"] = {
            "Email": "admin@coflows.test", "Domains": domains, "Directory": pebble.directory,
            "CaBundle": str(pebble.ca_bundle), "HttpPort": http_port, "RenewDays": RENEW_BEFORE / 86400}
        self.ws.save()
        self.log_path = root / "server.log"
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "coflows", "server", str(self.ws.config_path),
                                      "--port", str(self.port), *args],
                                     cwd=root, stdout=self.log, stderr=subprocess.STDOUT)
        self.acme_dir = self.ws.mnt / ".coflows" / "acme"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> None:
        assert self.proc.poll() is None, f"server exited with {self.proc.returncode}:\n{self.output()}"

    def peer_cert(self, verify: bool = True, host: str = DOMAINS[0]) -> x509.Certificate:
        """The certificate the HTTPS port presents for SNI `host` (verified against Pebble's root)."""
        ctx = ssl.create_default_context(cafile=str(self.pebble.root))
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname=host) as tls:
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))

    def wait_for_pebble_cert(self, timeout: float = 120) -> x509.Certificate:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            self.alive()
            try:
                return self.peer_cert()
            except (OSError, ssl.SSLError) as e:  # not listening yet, or still the placeholder
                last = e
            time.sleep(0.5)
        raise AssertionError(f"no Pebble certificate served in {timeout} s ({last}):\n{self.output()}")

    def wait_for_log(self, pattern: str, timeout: float = 90) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive()
            m = re.search(pattern, self.output())
            if m:
                return m
            time.sleep(0.3)
        raise AssertionError(f"no log line matching {pattern!r} in {timeout} s:\n{self.output()}")

    def https(self, method: str, path: str, host: str = DOMAINS[0]) -> tuple[int, bytes]:
        """A request over HTTPS to 127.0.0.1 as `host` (SNI and Host), verified against Pebble's root."""
        conn = _LoopbackHTTPS(host, self.port, context=ssl.create_default_context(cafile=str(self.pebble.root)))
        try:
            conn.request(method, path, headers={"x-api-key": ADMIN_KEY})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def http(self, path: str, host: str, method: str = "GET") -> httpx.Response:
        return httpx.request(method, f"http://127.0.0.1:{self.http_port}{path}", headers={"Host": host},
                             follow_redirects=False, timeout=10)

    def child_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"server started \(pid (\d+)\)", self.output())]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class _LoopbackHTTPS(http.client.HTTPSConnection):
    """HTTPS to a host name that DNS does not know: connect to 127.0.0.1, verify the name as given."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@pytest.fixture(scope="module")
def server(pebble: Pebble, tmp_path_factory: pytest.TempPathFactory):
    s = TlsServer(tmp_path_factory.mktemp("tls"), pebble, DOMAINS, pebble.http_port)
    try:
        s.first_cert = s.wait_for_pebble_cert()
        yield s
    finally:
        s.close()


def test_https_with_a_certificate_from_pebble(server: TlsServer) -> None:
    cert = server.first_cert
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(DOMAINS)
    # the second name verifies too (one certificate for all the domains)
    assert server.peer_cert(host=DOMAINS[1]).serial_number > 0
    status, body = server.https("GET", "/flow/query/Test/Calc.py/Add?x=2&y=3")
    assert (status, json.loads(body)) == (200, 5)
    # Pebble really fetched the token from our HTTP port (no PEBBLE_VA_ALWAYS_VALID)
    assert re.search(r"HTTP-01: answered \S+ from 127\.0\.0\.1", server.output())
    assert "serving on https://" in server.output()


def test_http_redirects_to_https_and_unknown_tokens_are_404(server: TlsServer) -> None:
    r = server.http("/flow/query/Test/Calc.py/Add?x=1&y=2", host=f"{DOMAINS[1]}:{server.http_port}")
    assert r.status_code == 308
    assert r.headers["location"] == f"https://{DOMAINS[1]}:{server.port}/flow/query/Test/Calc.py/Add?x=1&y=2"
    r = server.http("/x", host="evil.example", method="POST")  # a Host that is not ours: our first domain
    assert (r.status_code, r.headers["location"]) == (308, f"https://{DOMAINS[0]}:{server.port}/x")
    r = server.http("/.well-known/acme-challenge/not-a-token", host=DOMAINS[0])
    assert r.status_code == 404


def test_keys_and_certificate_are_owner_only_and_never_logged(server: TlsServer) -> None:
    acme = server.acme_dir
    assert acme.stat().st_mode & 0o777 == 0o700
    for name in ("account.key", "key.pem", "cert.pem"):
        assert (acme / name).stat().st_mode & 0o777 == 0o600, name
    assert sorted(p.name for p in acme.iterdir()) == ["account.key", "cert.pem", "key.pem"]  # no leftovers
    log = server.output()
    assert "PRIVATE KEY" not in log
    for name in ("account.key", "key.pem"):
        body = [line for line in (acme / name).read_text().splitlines() if "-----" not in line]
        assert not any(line in log for line in body), f"a line of {name} is in the log"


def test_renews_before_expiry_without_restarting(server: TlsServer) -> None:
    pids = server.child_pids()
    first = server.first_cert
    lifetime = first.not_valid_after_utc - first.not_valid_before_utc
    assert lifetime <= dt.timedelta(seconds=VALIDITY)
    deadline = time.monotonic() + VALIDITY + 60
    cert = first
    while cert.serial_number == first.serial_number and time.monotonic() < deadline:
        time.sleep(1)
        cert = server.peer_cert()  # verified against Pebble's root, for our name
    assert cert.serial_number != first.serial_number, f"no renewal served:\n{server.output()}"
    assert cert.not_valid_after_utc > first.not_valid_after_utc
    assert server.child_pids() == pids and len(pids) == 1  # the same server process serves it
    assert re.search(rf"TLS: serving the certificate for .* \(serial {cert.serial_number:x},", server.output())
    status, body = server.https("GET", "/flow/query/Test/Calc.py/Add?x=20&y=22")
    assert (status, json.loads(body)) == (200, 42)


def test_a_restarted_server_serves_the_stored_certificate(server: TlsServer) -> None:
    """A child that dies is restarted by the supervisor and serves the stored certificate at once (no new order)."""
    import signal

    pids = server.child_pids()
    orders = server.output().count("ACME: ordering")
    os.kill(pids[-1], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while len(server.child_pids()) == len(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(server.child_pids()) == len(pids) + 1, server.output()
    cert = server.wait_for_pebble_cert(timeout=60)  # verified against Pebble's root: not the placeholder
    stored = x509.load_pem_x509_certificates((server.acme_dir / "cert.pem").read_bytes())[0]
    assert cert.serial_number == stored.serial_number or server.output().count("ACME: ordering") > orders
    status, body = server.https("GET", "/flow/query/Test/Calc.py/Add?x=1&y=1")
    assert (status, json.loads(body)) == (200, 2)
    # the HTTP listener lives in the supervisor: it answered throughout
    assert server.http("/", host=DOMAINS[0]).status_code == 308


def test_a_domain_that_cannot_be_validated(pebble: Pebble, tmp_path: Path) -> None:
    """The lone server (no supervisor): a clear error naming the domain; HTTP-01 and the redirect stay up."""
    pebble.servfail(BAD_DOMAIN)
    s = TlsServer(tmp_path / "bad", pebble, [BAD_DOMAIN], free_port(), "--no-supervisor")
    try:
        m = s.wait_for_log(r"ERROR\s+coflows\.tls: ACME: no certificate for (\S+): (.*)")
        assert m.group(1) == BAD_DOMAIN
        assert BAD_DOMAIN in m.group(2) and "urn:ietf:params:acme:error:" in m.group(2), m.group(0)
        r = s.http("/", host=BAD_DOMAIN)
        assert (r.status_code, r.headers["location"]) == (308, f"https://{BAD_DOMAIN}:{s.port}/")
        assert s.http("/.well-known/acme-challenge/abc", host=BAD_DOMAIN).status_code == 404
        # HTTPS answers with the placeholder, which no client trusts
        with pytest.raises(ssl.SSLCertVerificationError):
            s.peer_cert(host=BAD_DOMAIN)
        placeholder = s.peer_cert(verify=False, host=BAD_DOMAIN)
        assert placeholder.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
            "coflows: certificate pending"
        assert not (s.acme_dir / "cert.pem").exists()
        s.alive()
    finally:
        s.close()


@pytest.mark.parametrize("lets_encrypt, field, reason", [
    ({"Email": "a@b.c"}, "Server.LetsEncrypt", "Domains is needed with Email"),
    ({"Domains": ["a.example"]}, "Server.LetsEncrypt", "Email is needed with Domains"),
    ({"Email": "a@b.c", "Domains": ["*.example.org"]}, "Server.LetsEncrypt.Domains", "a wildcard needs DNS-01"),
    ({"Email": "a@b.c", "Domains": ["10.0.0.1"]}, "Server.LetsEncrypt.Domains", "an IP address"),
    ({"Email": "a@b.c", "Domains": ["localhost"]}, "Server.LetsEncrypt.Domains", "not a fully qualified"),
    ({"Email": "a@b.c", "Domains": ["a.example"], "HttpPort": 0}, "Server.LetsEncrypt.HttpPort", "greater than"),
])
def test_config_errors_name_the_field(lets_encrypt: dict, field: str, reason: str) -> None:
    from coflows.config import parse_config
    from coflows.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        parse_config({"Server": {"LetsEncrypt": lets_encrypt}}, "cfg.json", Path("/base"))
    assert f"cfg.json: {field}: " in str(e.value) and reason in str(e.value)


def test_domains_are_normalized_and_tls_is_off_without_them() -> None:
    from coflows.config import parse_config

    le = parse_config({"Server": {"LetsEncrypt": {"Email": "a@b.c", "Domains": ["WWW.Example.org."]}}},
                      "cfg.json", Path("/base")).server.lets_encrypt
    assert le.domains == ["www.example.org"] and le.enabled and le.http_port == 80 and le.renew_days == 30
    assert not parse_config({}, "cfg.json", Path("/base")).server.lets_encrypt.enabled


@pytest.mark.parametrize("supervised", [True, False])
def test_a_busy_http_port_is_a_config_error(tmp_path: Path, supervised: bool) -> None:
    """HttpPort taken: exit 2 at once, naming the field (no ACME server needed)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ws = new_workspace(tmp_path / "ws")
        ws.config["Server"]["LetsEncrypt"] = {"Email": "a@b.c", "Domains": ["coflows.test"],
                                              "Directory": "https://127.0.0.1:9/dir",
                                              "HttpPort": busy.getsockname()[1]}
        ws.save()
        r = subprocess.run([sys.executable, "-m", "coflows", "server", str(ws.config_path), "--port", str(free_port()),
                            *([] if supervised else ["--no-supervisor"])],
                           cwd=ws.root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    out = " ".join((r.stdout + r.stderr).split())
    assert "Server.LetsEncrypt.HttpPort: cannot listen on 127.0.0.1:" in out
