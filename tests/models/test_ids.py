"""Model references: hub ids with revisions, local directories, and what is not a model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.errors import InvalidRequest, ModelNotFound
from app.models.ids import ModelRef, parse_model_ref, parse_requested_ref


@pytest.mark.parametrize(
    ("text", "source", "revision"),
    [
        ("org/name", "org/name", "main"),
        ("  org/name  ", "org/name", "main"),
        ("gpt2", "gpt2", "main"),
        ("org/name@v1.0", "org/name", "v1.0"),
        ("org/name@refs/pr/3", "org/name", "refs/pr/3"),
        ("org/name@0123456789abcdef0123456789abcdef01234567", "org/name", "0123456789abcdef0123456789abcdef01234567"),
        ("org/name@", "org/name", "main"),
    ],
)
def test_hub_ids(text: str, source: str, revision: str) -> None:
    ref = parse_model_ref(text)
    assert ref == ModelRef(source, revision)


def test_name_is_canonical() -> None:
    assert parse_model_ref("org/name").name == "org/name@main"
    assert parse_model_ref("org/name@dev").name == "org/name@dev"


def test_local_directory_is_absolute_with_no_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    monkeypatch.chdir(tmp_path)
    for text in ("my-model", "./my-model", str(model_dir), f"{tmp_path}/../{tmp_path.name}/my-model"):
        ref = parse_model_ref(text)
        assert ref == ModelRef(str(model_dir.resolve()), None)
        assert Path(ref.source).is_absolute()
        assert ref.name == str(model_dir.resolve())


def test_local_directory_wins_over_a_hub_id_of_the_same_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert parse_model_ref("org/name") == ModelRef(str((tmp_path / "org" / "name").resolve()), None)


def test_a_file_is_not_a_local_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "weights").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert parse_model_ref("weights") == ModelRef("weights", "main")


@pytest.mark.parametrize(
    "text", ["not a valid id!", "org/name/extra", "org//name", "-org/name", "org/na..me", "/no/such/dir"]
)
def test_invalid_ids_are_model_not_found(text: str) -> None:
    with pytest.raises(ModelNotFound) as exc:
        parse_model_ref(text)
    assert exc.value.status == 404
    assert exc.value.param == "model"
    assert text.strip() in exc.value.message


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_is_invalid_request(text: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_model_ref(text)
    assert exc.value.status == 400
    assert exc.value.param == "model"


# -- names a request sends ---------------------------------------------------------------------------


def _refusal(text: str, roots: tuple[str, ...] = ()) -> str:
    with pytest.raises(ModelNotFound) as exc:
        parse_requested_ref(text, roots)
    assert exc.value.status == 404 and exc.value.param == "model"
    return exc.value.message


def test_a_request_may_name_hub_ids() -> None:
    assert parse_requested_ref("org/name@v1") == ModelRef("org/name", "v1")
    assert parse_requested_ref(" gpt2 ") == ModelRef("gpt2", "main")


def test_a_request_may_name_a_directory_only_below_an_allowed_root(tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "tiny").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    assert parse_requested_ref(str(root / "tiny"), (str(root),)) == ModelRef(str(root / "tiny"), None)
    assert parse_requested_ref(f"{root}/../models/tiny/", (str(root),)) == ModelRef(str(root / "tiny"), None)
    _refusal(str(tmp_path / "elsewhere"), (str(root),))
    _refusal(f"{root}/../elsewhere", (str(root),))
    _refusal(str(root / "tiny"))  # no roots: no local models at all


def test_a_symlink_out_of_a_root_is_refused_and_one_into_it_is_named_from_the_root(tmp_path: Path) -> None:
    real_root = tmp_path / "disk" / "models"
    (real_root / "tiny").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    root = tmp_path / "models"
    root.symlink_to(real_root)
    (real_root / "escape").symlink_to(tmp_path / "secret")
    _refusal(str(root / "escape"), (str(root),))
    ref = parse_requested_ref(str(root / "tiny"), (str(root),))
    assert ref == ModelRef(str(root / "tiny"), None) and "disk" not in ref.name


def test_every_refused_name_gets_the_same_message_with_only_the_clients_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing, missing = tmp_path / "exists", tmp_path / "missing"
    existing.mkdir()
    monkeypatch.chdir(tmp_path)
    texts = ["~", "~root", "/proc/self/cwd", "/", str(existing), str(missing), "./exists", "exists/", "a b", ".."]
    for text in texts:
        message = _refusal(text, (str(tmp_path / "models"),))
        assert message == f"The model `{text.strip()}` does not exist or is not available on this server."
        for revealing in (str(tmp_path), os.path.expanduser("~"), os.getcwd()):
            assert revealing not in message or revealing in text


def test_an_empty_requested_name_is_invalid() -> None:
    with pytest.raises(InvalidRequest):
        parse_requested_ref("  ")
