"""The one way media reach the server from a URL: ``data:``, ``http(s)://`` and (opt-in) ``file://``.

Remote fetches cannot be turned against the host or its network:

* http and https only; every redirect (at most ``max_redirects``) is checked again like the first URL;
* the host name is resolved once, every address it resolves to must be public (``addresses.py``: no
  block of the IANA special-purpose registries, IPv4 carried in IPv6 judged as IPv4; cloud metadata
  addresses are link-local or private), and the connection goes to an address that was checked, so a
  second DNS answer cannot swap in another one (DNS rebinding);
* ``allowed_hosts`` and ``allow_private`` lift the address check for hosts an operator trusts;
* a deadline for the whole fetch, a connect timeout, and a byte cap (``Content-Length`` and the bytes
  actually read) that answers "too large".
"""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes, urljoin, urlsplit

from app.media.addresses import Address, is_public
from app.media.failures import MediaError
from app.media.limits import FetchPolicy

Connect = Callable[[tuple[str, int], float], socket.socket]
_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024
_USER_AGENT = "hfserve-media-fetch"


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    content_type: str | None  # the media type the source declared, if any


def _too_large(cap: int) -> MediaError:
    message = f"The media is larger than the {cap} bytes left for this request (--max-media-bytes)."
    return MediaError(message, "too_large")


def load_url(url: str, policy: FetchPolicy, max_bytes: int, *, connect: Connect | None = None) -> Fetched:
    """The bytes behind ``url`` (blocking). ``connect`` opens the TCP connection (tests pass a spy)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "data":
        return parse_data_url(url, max_bytes)
    if scheme in ("http", "https"):
        return fetch_http(url, policy, max_bytes, connect=connect or socket.create_connection)
    if scheme == "file":
        return read_local_file(url, policy, max_bytes)
    raise MediaError(f"Unsupported URL scheme `{scheme or url[:16]}`; use http(s) or a data: URL.", "refused")


def parse_data_url(url: str, max_bytes: int) -> Fetched:
    """``data:[<media type>][;base64],<data>`` (RFC 2397)."""
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise MediaError("Malformed data: URL (no comma).")
    params = header.split(";")
    is_base64 = params[-1].strip().lower() == "base64"
    if is_base64:
        if len(payload) * 3 // 4 > max_bytes + 3:
            raise _too_large(max_bytes)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MediaError("The data: URL is not valid base64.") from exc
    else:
        data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return Fetched(data, params[0].strip().lower() or None)


def read_local_file(url: str, policy: FetchPolicy, max_bytes: int) -> Fetched:
    """``file://`` below ``--allowed-local-media-path`` only (symlinks resolved before the check)."""
    if not policy.local_path:
        raise MediaError("file:// URLs are disabled on this server (see --allowed-local-media-path).", "refused")
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise MediaError("file:// URLs must name a local path.", "refused")
    root = os.path.realpath(policy.local_path)
    path = os.path.realpath(unquote(parts.path))
    if os.path.commonpath([root, path]) != root:
        raise MediaError("The file is outside the directory allowed for local media.", "refused")
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise MediaError("The local media file cannot be read.") from exc
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return Fetched(data, None)


# -- addresses -------------------------------------------------------------------------------------


def _host_allowed(host: str, policy: FetchPolicy) -> bool:
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    for entry in policy.allowed_hosts:
        entry = entry.strip().lower().rstrip(".")
        if host == entry:
            return True
        if literal is not None:
            try:
                if literal in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def resolve_checked(host: str, port: int, policy: FetchPolicy) -> list[Address]:
    """The addresses to connect to; refuses before any connection when one of them is not public."""
    try:
        addresses: list[Address] = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise MediaError(f"Cannot resolve the media host `{host}`.") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    if policy.allow_private or _host_allowed(host, policy):
        return addresses
    blocked = [str(a) for a in addresses if not is_public(a)]
    if blocked:
        raise MediaError(
            f"Refusing to fetch media from `{host}`: it resolves to a non-public address ({blocked[0]}). "
            "Allow it with --allowed-media-hosts or --allow-private-media.",
            "refused",
        )
    return addresses


# -- http ------------------------------------------------------------------------------------------


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to one already checked address, with the URL's host in ``Host`` and TLS SNI/verification."""

    def __init__(self, host: str, port: int, address: Address, *, tls: bool, connect: Connect, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address, self._tls, self._connect = address, tls, connect

    def connect(self) -> None:
        sock = self._connect((str(self._address), self.port), self.timeout)
        if self._tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


def _open(
    url: str, policy: FetchPolicy, deadline: float, connect: Connect
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise MediaError(f"Media URLs must be http(s); got `{scheme}`.", "refused")
    if parts.username or parts.password:
        raise MediaError("Media URLs may not carry credentials.", "refused")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise MediaError("The media URL has no host.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise MediaError("The media URL has an invalid port.") from exc
    addresses = resolve_checked(host, port, policy)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    last: Exception | None = None
    for address in addresses:
        timeout = max(0.01, min(policy.connect_timeout, deadline - time.monotonic()))
        conn = _PinnedConnection(host, port, address, tls=scheme == "https", connect=connect, timeout=timeout)
        try:
            conn.connect()
            conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
            conn.request("GET", path, headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"})
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if isinstance(exc, TimeoutError) and time.monotonic() >= deadline - 0.05:
                raise MediaError("Fetching the media took too long (--media-fetch-timeout).") from exc
            last = exc
    raise MediaError(f"Could not fetch the media from `{host}`: {last}.")


def _read_body(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    """The body, within the byte cap; the deadline is checked between reads, and each read waits at most
    the time that was left when the request was sent (the socket's timeout), so a fetch ends by twice
    ``timeout`` at the latest."""
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MediaError("Fetching the media took too long (--media-fetch-timeout).")
        chunk = response.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)


def fetch_http(url: str, policy: FetchPolicy, max_bytes: int, *, connect: Connect) -> Fetched:
    deadline = time.monotonic() + policy.timeout
    for _ in range(policy.max_redirects + 1):
        conn, response = _open(url, policy, deadline, connect)
        try:
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise MediaError(f"The media URL redirected (HTTP {response.status}) without a Location.")
                url = urljoin(url, location)
                continue
            if not 200 <= response.status < 300:
                raise MediaError(f"Fetching the media failed: HTTP {response.status}.")
            body = _read_body(response, max_bytes, deadline)
            content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower() or None
            return Fetched(body, content_type)
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, TimeoutError | socket.timeout):
                raise MediaError("Fetching the media took too long (--media-fetch-timeout).") from exc
            raise MediaError(f"Fetching the media failed: {exc}.") from exc
        finally:
            response.close()
            conn.close()
    raise MediaError(f"The media URL redirected more than {policy.max_redirects} times.", "refused")
