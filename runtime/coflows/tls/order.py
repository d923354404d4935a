"""One certificate from an ACME server over HTTP-01, with certbot's `acme` library doing the protocol.

`obtain` registers (or finds) the account of the stored account key, orders a certificate for
the domains, puts each HTTP-01 answer on the `ChallengeServer`, waits (at most `timeout`
seconds) for the authorizations and the order, and stores the new key and full chain (0600).
Every failure is an `AcmeFailure` whose message names the domains and the ACME server's own
error; no key is ever part of a message or a log line.
"""

from __future__ import annotations

import datetime as dt
import logging

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives.asymmetric import ec

from coflows.tls.challenge import ChallengeServer
from coflows.tls.files import TlsFiles, private_pem

log = logging.getLogger("coflows.tls")

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
NETWORK_TIMEOUT = 30  # seconds for one request to the ACME server


class AcmeFailure(Exception):
    """No certificate this time; the message says for which domains and what the ACME server said."""


def obtain(*, directory_url: str, email: str, domains: list[str], files: TlsFiles, http01: ChallengeServer,
           ca_bundle: str = "", timeout: float = 120.0) -> None:
    """Order, validate and store a certificate for `domains`; raise AcmeFailure."""
    names = ", ".join(domains)
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
    tokens: list[str] = []
    try:
        account_key = jose.JWKRSA(key=files.load_or_make_account_key())
        net = client.ClientNetwork(account_key, user_agent="coflows", verify_ssl=ca_bundle or True,
                                   timeout=NETWORK_TIMEOUT)
        acme = client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)
        _register(acme, net, email)
        cert_key = ec.generate_private_key(ec.SECP256R1())
        order = acme.new_order(crypto_util.make_csr(private_pem(cert_key), domains))
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # proved recently with this account: nothing to answer
            challb = _http01(authz)
            response, key_authorization = challb.response_and_validation(account_key)
            token = challb.chall.encode("token")
            http01.put(token, key_authorization)
            tokens.append(token)
            acme.answer_challenge(challb, response)
        order = acme.poll_and_finalize(order, deadline)
        files.store_certificate(private_pem(cert_key), order.fullchain_pem.encode())
    except errors.ValidationError as e:
        raise AcmeFailure(f"no certificate for {names}: the ACME server could not validate "
                          f"{_failed(e)}") from None
    except errors.TimeoutError:
        raise AcmeFailure(f"no certificate for {names}: the order was not done within {timeout:.0f} s "
                          f"(is http://{domains[0]}:80/.well-known/acme-challenge/ reaching this server?)") from None
    except messages.Error as e:
        raise AcmeFailure(f"no certificate for {names}: the ACME server refused: {e}") from None
    except requests.RequestException as e:
        raise AcmeFailure(f"no certificate for {names}: cannot reach the ACME server {directory_url}: "
                          f"{type(e).__name__}: {e}") from None
    except (errors.Error, ValueError, OSError) as e:
        raise AcmeFailure(f"no certificate for {names}: {type(e).__name__}: {e}") from None
    finally:
        for token in tokens:
            http01.remove(token)


def _register(acme: client.ClientV2, net: client.ClientNetwork, email: str) -> None:
    """The account of our key: created (agreeing to the terms of service) or, if it exists, found."""
    try:
        acme.new_account(messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True))
    except errors.ConflictError as e:
        net.account = messages.RegistrationResource(uri=e.location, body=messages.Registration())


def _http01(authz: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challb in authz.body.challenges:
        if isinstance(challb.chall, challenges.HTTP01):
            return challb
    offered = ", ".join(c.chall.typ for c in authz.body.challenges)
    raise AcmeFailure(f"no certificate for {authz.body.identifier.value}: the ACME server offers no HTTP-01 "
                      f"challenge (only {offered})")


def _failed(e: errors.ValidationError) -> str:
    parts = []
    for authzr in e.failed_authzrs:
        problems = [str(c.error) for c in authzr.body.challenges if c.error is not None]
        parts.append(f"{authzr.body.identifier.value}: {'; '.join(problems) or authzr.body.status.name}")
    return "; ".join(parts)
