"""The one fetch path: data/file/http(s) URLs, size and redirect limits, and SSRF refusals.

Real loopback HTTP servers are used throughout. Addresses that must never be contacted for real
(10.x, 169.254.169.254) are fetched with a ``connect`` spy in place of ``socket.create_connection``:
the test asserts that the refusal comes before any connection attempt.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from app.media.failures import MediaError
from app.media.fetch import is_public, load_url, parse_data_url, resolve_checked
from app.media.limits import FetchPolicy
from tests.support.media import MediaServer, data_url, media_server, png

OPEN = FetchPolicy(allow_private=True, timeout=5)
STRICT = FetchPolicy(timeout=5)
MB = 1024 * 1024


@pytest.fixture
def server() -> Iterator[MediaServer]:
    with media_server() as running:
        yield running


class ConnectSpy:
    """Stands in for ``socket.create_connection`` where a real connection must not happen."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, address: tuple[str, int], timeout: float) -> socket.socket:
        self.calls.append(address)
        raise AssertionError(f"a connection to {address} was attempted")


def test_allowed_fetch_from_a_private_address_when_configured(server: MediaServer) -> None:
    url = server.file("/red.png", png(), "image/png")
    fetched = load_url(url, OPEN, MB)
    assert fetched.data == png() and fetched.content_type == "image/png"


def test_loopback_is_refused_by_default_without_a_request(server: MediaServer) -> None:
    url = server.file("/red.png", png())
    with pytest.raises(MediaError) as caught:
        load_url(url, STRICT, MB)
    assert caught.value.kind == "refused" and "127.0.0.1" in caught.value.message
    assert server.hits == []


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3/x.png", "http://169.254.169.254/latest/meta-data/", "https://[fd00:ec2::254]/x"]
)
def test_private_and_metadata_addresses_are_refused_before_connecting(url: str) -> None:
    spy = ConnectSpy()
    with pytest.raises(MediaError) as caught:
        load_url(url, STRICT, MB, connect=spy)
    assert caught.value.kind == "refused"
    assert spy.calls == []


def test_a_hostname_resolving_to_loopback_is_refused(server: MediaServer) -> None:
    url = server.file("/red.png", png()).replace("127.0.0.1", "localhost")
    with pytest.raises(MediaError) as caught:
        load_url(url, STRICT, MB)
    assert caught.value.kind == "refused" and "localhost" in caught.value.message
    assert server.hits == []


@pytest.mark.parametrize(
    "host",
    [
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b:1:7f00:0:100::]",
        "[2002:7f00:1::]",
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
        "192.0.0.192",
    ],
)
def test_loopback_carried_in_ipv6_is_refused_before_connecting(server: MediaServer, host: str) -> None:
    """Each form names the loopback server's own port; the spy stands in for the connection, so a miss
    could reach nothing but 127.0.0.1 (``192.0.0.192`` is a special-purpose address Python calls global)."""
    url = server.file("/red.png", png()).replace("127.0.0.1", host)
    spy = ConnectSpy()
    with pytest.raises(MediaError) as caught:
        load_url(url, STRICT, MB, connect=spy)
    assert caught.value.kind == "refused"
    assert spy.calls == [] and server.hits == []


def test_a_redirect_to_loopback_carried_in_ipv6_is_refused(server: MediaServer) -> None:
    target = server.file("/red.png", png()).replace("127.0.0.1", "[64:ff9b::7f00:1]")
    start = server.redirect("/go", target)
    trusted = FetchPolicy(allowed_hosts=("127.0.0.1",), timeout=5)
    with pytest.raises(MediaError) as caught:
        load_url(start, trusted, MB)
    assert caught.value.kind == "refused"
    assert server.hits == ["/go"]


def test_every_redirect_is_checked_again(server: MediaServer) -> None:
    target = server.file("/red.png", png()).replace("127.0.0.1", "localhost")
    start = server.redirect("/start", target)
    trusted = FetchPolicy(allowed_hosts=("127.0.0.1",), timeout=5)
    with pytest.raises(MediaError) as caught:
        load_url(start, trusted, MB)
    assert caught.value.kind == "refused" and "localhost" in caught.value.message
    assert server.hits == ["/start"]  # the redirect target was never requested
    server.redirect("/local", "/red.png")  # same host: allowed
    assert load_url(f"{server.url}/local", trusted, MB).data == png()


def test_allowed_hosts_take_networks_and_exact_names(server: MediaServer) -> None:
    url = server.file("/red.png", png())
    assert load_url(url, FetchPolicy(allowed_hosts=("127.0.0.0/8",), timeout=5), MB).data == png()
    with pytest.raises(MediaError):
        load_url(url.replace("127.0.0.1", "localhost"), FetchPolicy(allowed_hosts=("127.0.0.1",)), MB)


def test_redirects_are_bounded(server: MediaServer) -> None:
    server.redirect("/loop", "/loop")
    with pytest.raises(MediaError) as caught:
        load_url(f"{server.url}/loop", FetchPolicy(allow_private=True, max_redirects=3, timeout=5), MB)
    assert "redirected more than 3" in caught.value.message
    assert len(server.hits) == 4


def test_redirect_to_another_scheme_is_refused(server: MediaServer) -> None:
    server.redirect("/file", "file:///etc/passwd")
    with pytest.raises(MediaError) as caught:
        load_url(f"{server.url}/file", OPEN, MB)
    assert caught.value.kind == "refused"


def test_size_cap_from_content_length_and_from_the_body(server: MediaServer) -> None:
    url = server.file("/big", b"x" * 5000)
    with pytest.raises(MediaError) as caught:
        load_url(url, OPEN, 4000)
    assert caught.value.kind == "too_large"

    def no_length(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(b"y" * 5000)
        handler.close_connection = True

    server.routes["/stream"] = no_length
    with pytest.raises(MediaError) as caught:
        load_url(f"{server.url}/stream", OPEN, 4000)
    assert caught.value.kind == "too_large"
    assert load_url(f"{server.url}/stream", OPEN, 6000).data == b"y" * 5000


def test_http_errors_and_a_slow_server_are_invalid_not_hangs(server: MediaServer) -> None:
    with pytest.raises(MediaError, match="HTTP 404"):
        load_url(f"{server.url}/missing", OPEN, MB)
    release = __import__("threading").Event()

    def stall(handler: BaseHTTPRequestHandler) -> None:
        release.wait(10)

    server.routes["/stall"] = stall
    try:
        with pytest.raises(MediaError, match="too long"):
            load_url(f"{server.url}/stall", FetchPolicy(allow_private=True, timeout=0.5), MB)
    finally:
        release.set()


def test_data_urls() -> None:
    assert parse_data_url(data_url(b"abc", "image/png"), 10).data == b"abc"
    assert parse_data_url("data:,hello%20there", 100).data == b"hello there"
    with pytest.raises(MediaError, match="base64"):
        parse_data_url("data:image/png;base64,***", 100)
    with pytest.raises(MediaError) as caught:
        parse_data_url(data_url(b"x" * 100, "image/png"), 10)
    assert caught.value.kind == "too_large"


def test_file_urls_are_off_by_default_and_confined_when_on(tmp_path: Path) -> None:
    inside = tmp_path / "media"
    inside.mkdir()
    (inside / "red.png").write_bytes(png())
    (tmp_path / "secret").write_text("no")
    (inside / "escape").symlink_to(tmp_path / "secret")
    with pytest.raises(MediaError, match="disabled"):
        load_url(f"file://{inside}/red.png", STRICT, MB)
    allowed = FetchPolicy(local_path=str(inside))
    assert load_url(f"file://{inside}/red.png", allowed, MB).data == png()
    for path in (f"{inside}/../secret", f"{inside}/escape"):
        with pytest.raises(MediaError, match="outside"):
            load_url(f"file://{path}", allowed, MB)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.100.100.200", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00:ec2::254", False),
        ("::ffff:127.0.0.1", False),
        ("2002:7f00:1::", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address(address)) is public


def test_unknown_schemes_and_unresolvable_hosts() -> None:
    with pytest.raises(MediaError, match="scheme"):
        load_url("ftp://example.org/x", STRICT, MB)
    with pytest.raises(MediaError, match="resolve"):
        resolve_checked("no-such-host.invalid", 80, STRICT)
