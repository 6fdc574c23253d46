"""Model references: hub ids with revisions, local directories, and what is not a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import InvalidRequest, ModelNotFound
from app.models.ids import ModelRef, parse_model_ref


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
