"""Is it really the carrier? Twilio signs each webhook and Media Streams upgrade with the account's
auth token (`X-Twilio-Signature`); AudioSocket peers (Asterisk) are checked against an address
allow-list. README, "Verifying carriers"."""
from __future__ import annotations

import ipaddress
import logging
from typing import Iterable, List, Mapping, Optional, Union

from fastapi import HTTPException, WebSocketException, status
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import HTTPConnection, Request
from twilio.request_validator import RequestValidator

from hotline.core.settings import Settings
from voice_gateway import metrics

logger = logging.getLogger(__name__)

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_networks(spec: str) -> List[Network]:
    """"127.0.0.1, 10.0.0.0/24, ::1" → networks; a bad entry is a ValueError that names it."""
    networks: List[Network] = []
    for item in (part.strip() for part in spec.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"not an IP address or network: {item!r}") from None
    return networks


LOOPBACK = parse_networks("127.0.0.0/8,::1")


def address_in(host: Optional[str], networks: Iterable[Network]) -> bool:
    """Whether a peer address (as a socket or ASGI reports it) is in one of the networks.
    Anything that is not an IP address (a Unix socket, no peer at all) is not."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(address in network for network in networks)


def websocket_url(http_url: str) -> str:
    """The ws(s):// form of an http(s):// URL: what Twilio connects to and signs for a stream."""
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if http_url.startswith(http):
            return ws + http_url[len(http):]
    return http_url


def signs_twilio(settings: Settings) -> bool:
    """Signatures are checked when both the auth token and the URL Twilio signs are known."""
    return bool(settings.twilio_auth_token and settings.public_url)


def signed_url(public_url: str, connection: HTTPConnection) -> str:
    """The URL Twilio signed: PUBLIC_URL + path (+ query), ws(s):// for a WebSocket upgrade."""
    url = public_url.rstrip("/") + connection.url.path
    if connection.url.query:
        url += "?" + connection.url.query
    return websocket_url(url) if connection.scope["type"] == "websocket" else url


def twilio_signature_valid(token: str, url: str, params: Mapping[str, object], signature: Optional[str]) -> bool:
    """`params`: the form fields (a multi-dict: Twilio signs every value of a repeated field)."""
    if not signature:
        return False
    return RequestValidator(token).validate(url, params, signature)


async def twilio_allowed(connection: HTTPConnection, settings: Settings) -> bool:
    """A signed request from Twilio; or, with signature checks off, a loopback client."""
    if not signs_twilio(settings):
        return address_in(connection.client.host if connection.client else None, LOOPBACK)
    params = ImmutableMultiDict()
    if isinstance(connection, Request) and connection.method == "POST":
        form = await connection.form()  # Starlette keeps it: the route reads the same form
        params = ImmutableMultiDict([(k, v) for k, v in form.multi_items() if isinstance(v, str)])
    return twilio_signature_valid(settings.twilio_auth_token, signed_url(settings.public_url, connection),
                                  params, connection.headers.get("x-twilio-signature"))


async def verify_twilio(connection: HTTPConnection) -> None:
    """Dependency of every /twilio route: refuse anything that is not Twilio's with HTTP 403 (a
    WebSocket upgrade is closed with 1008 before it is accepted, which uvicorn answers with 403)."""
    settings: Settings = connection.app.state.settings
    if await twilio_allowed(connection, settings):
        return
    reason = "forged_request" if signs_twilio(settings) else "not_loopback"
    metrics.ERRORS.labels("twilio", reason).inc()
    logger.warning("twilio: refused %s %s from %s (%s)", connection.scope["type"], connection.url.path,
                   connection.client.host if connection.client else "?", reason)
    if connection.scope["type"] == "websocket":
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION, "not a verified Twilio request")
    raise HTTPException(status.HTTP_403_FORBIDDEN, "not a verified Twilio request")


def log_checks(settings: Settings) -> None:
    """At start-up: say which carrier checks are on."""
    if signs_twilio(settings):
        logger.info("twilio: requests must carry a valid X-Twilio-Signature for %s", settings.public_url)
    else:
        missing = " and ".join(name for name, value in (("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
                                                         ("PUBLIC_URL", settings.public_url)) if not value)
        logger.warning("twilio: signature checks are OFF (no %s): /twilio/* answers loopback clients only", missing)
    logger.info("audiosocket: accepting peers in %s", settings.audiosocket_allowed_peers)
