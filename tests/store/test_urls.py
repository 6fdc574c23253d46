"""Store URLs as the settings check them."""

from __future__ import annotations

import pytest

from app.store.urls import check_store_url


@pytest.mark.parametrize("url", ["memory://", "sqlite:///r.sqlite3", "sqlite:////data/r.sqlite3", "redis://h:1/0"])
def test_good_urls_pass_unchanged(url: str) -> None:
    assert check_store_url(url) == url


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("postgres://db/x", "starts with one of"),
        ("memory", "starts with one of"),
        ("sqlite://", "sqlite:///"),
        ("sqlite://host/x.db", "sqlite:///"),
        ("redis://", "names its host"),
    ],
)
def test_bad_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        check_store_url(url)
