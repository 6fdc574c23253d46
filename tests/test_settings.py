"""Settings: HFSERVE_* environment variables, explicit values, validation, immutability."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from app.settings import Settings

pytestmark = pytest.mark.usefixtures("clean_env")  # no HFSERVE_* from the outer environment


def test_defaults() -> None:
    s = Settings()
    assert s.model is None
    assert (s.host, s.port) == ("localhost", 8000)
    assert s.model_timeout == 300
    assert s.api_key == []
    assert s.cors_origins == ["*"]
    assert s.chat_template_kwargs == {}
    assert s.default_seed is None
    assert s.log_level == "info"
    assert s.max_body_size == 32 * 1024 * 1024
    assert s.metrics is True


def test_scalar_values_from_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HFSERVE_MODEL", "org/name@v1")
    clean_env.setenv("HFSERVE_PORT", "9001")
    clean_env.setenv("HFSERVE_MODEL_TIMEOUT", "-1")
    clean_env.setenv("HFSERVE_TRUST_REMOTE_CODE", "true")
    clean_env.setenv("HFSERVE_DEFAULT_SEED", "7")
    clean_env.setenv("HFSERVE_DEVICE", "cuda:1")
    clean_env.setenv("HFSERVE_LOG_LEVEL", "DEBUG")
    clean_env.setenv("HFSERVE_METRICS", "false")
    s = Settings()
    assert s.model == "org/name@v1"
    assert s.port == 9001
    assert s.model_timeout == -1
    assert s.trust_remote_code is True
    assert s.default_seed == 7
    assert s.device == "cuda:1"
    assert s.log_level == "debug"
    assert s.metrics is False


def test_env_names_are_case_insensitive(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("hfserve_port", "9002")
    assert Settings().port == 9002


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("k1", ["k1"]),
        ("k1,k2", ["k1", "k2"]),
        (" k1 , k2 ,, ", ["k1", "k2"]),
        ('["k1", "k,2"]', ["k1", "k,2"]),
        ("", []),
    ],
)
def test_api_keys_from_env(clean_env: pytest.MonkeyPatch, value: str, expected: list[str]) -> None:
    clean_env.setenv("HFSERVE_API_KEY", value)
    assert Settings().api_key == expected


def test_cors_origins_from_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HFSERVE_ENABLE_CORS", "1")
    clean_env.setenv("HFSERVE_CORS_ORIGINS", "http://a.example, https://b.example")
    s = Settings()
    assert s.enable_cors is True
    assert s.cors_origins == ["http://a.example", "https://b.example"]


def test_cors_origins_as_json_list(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HFSERVE_CORS_ORIGINS", '["http://a.example"]')
    assert Settings().cors_origins == ["http://a.example"]


def test_chat_template_kwargs_from_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HFSERVE_CHAT_TEMPLATE_KWARGS", '{"enable_thinking": false, "custom": [1, 2]}')
    assert Settings().chat_template_kwargs == {"enable_thinking": False, "custom": [1, 2]}


def test_chat_template_kwargs_as_text_argument() -> None:
    assert Settings(chat_template_kwargs='{"enable_thinking": true}').chat_template_kwargs == {"enable_thinking": True}
    assert Settings(chat_template_kwargs="  ").chat_template_kwargs == {}


@pytest.mark.parametrize("value", ["[1, 2]", '"text"', "{bad"])
def test_chat_template_kwargs_must_be_a_json_object(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(chat_template_kwargs=value)


@pytest.mark.parametrize("value", ["[1, 2]", "{bad"])
def test_chat_template_kwargs_env_must_be_a_json_object(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("HFSERVE_CHAT_TEMPLATE_KWARGS", value)
    with pytest.raises((ValidationError, SettingsError)):
        Settings()


def test_lists_as_text_arguments() -> None:
    s = Settings(api_key="a,b", cors_origins="http://x")
    assert s.api_key == ["a", "b"]
    assert s.cors_origins == ["http://x"]


def test_explicit_arguments_beat_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HFSERVE_PORT", "9001")
    clean_env.setenv("HFSERVE_API_KEY", "from-env")
    clean_env.setenv("HFSERVE_CORS_ORIGINS", "http://env.example")
    clean_env.setenv("HFSERVE_CHAT_TEMPLATE_KWARGS", '{"a": 1}')
    s = Settings(port=7000, api_key=["explicit"], cors_origins="http://arg.example", chat_template_kwargs='{"b": 2}')
    assert s.port == 7000
    assert s.api_key == ["explicit"]
    assert s.cors_origins == ["http://arg.example"]
    assert s.chat_template_kwargs == {"b": 2}


@pytest.mark.parametrize("explicit", [{"b": 2}, {}])
def test_explicit_chat_template_kwargs_dict_replaces_env(clean_env: pytest.MonkeyPatch, explicit: dict) -> None:
    clean_env.setenv("HFSERVE_CHAT_TEMPLATE_KWARGS", '{"a": 1}')
    assert Settings(chat_template_kwargs=explicit).chat_template_kwargs == explicit


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.api_key = ["x"]  # type: ignore[misc]
    assert s.port == 8000


def test_api_keys_are_not_in_the_repr() -> None:
    s = Settings(api_key=["sk-very-secret"])
    assert "sk-very-secret" not in repr(s)
    assert "sk-very-secret" not in str(s)


def test_unknown_argument_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(prot=8000)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("port", 70000),
        ("port", -1),
        ("port", "http"),
        ("model_timeout", -2),
        ("dtype", "int8"),
        ("device", "gpu"),
        ("device", "cuda:x"),
        ("quantization", "gptq"),
        ("reasoning", "maybe"),
        ("log_level", "verbose"),
        ("max_queue", 0),
        ("max_batch_size", 0),
        ("max_model_len", 0),
        ("max_body_size", 100),
    ],
)
def test_invalid_values_raise(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as exc:
        Settings(**{field: value})
    assert exc.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    ("name", "value"), [("HFSERVE_PORT", "abc"), ("HFSERVE_DEVICE", "tpu"), ("HFSERVE_MAX_QUEUE", "0")]
)
def test_invalid_env_values_raise(clean_env: pytest.MonkeyPatch, name: str, value: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_json_round_trip_ignores_env(clean_env: pytest.MonkeyPatch) -> None:
    """The server worker rebuilds the settings from JSON: the result must equal the original."""
    original = Settings(
        port=9100, api_key=["a", "b"], chat_template_kwargs={"enable_thinking": False}, model_timeout=-1
    )
    clean_env.setenv("HFSERVE_PORT", "1234")
    clean_env.setenv("HFSERVE_API_KEY", "env-key")
    rebuilt = Settings.model_validate_json(original.model_dump_json())
    assert rebuilt == original
    assert rebuilt.api_key == ["a", "b"]


def test_allowed_local_model_paths_default_to_none_and_come_from_env(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().allowed_local_model_paths == []
    clean_env.setenv("HFSERVE_ALLOWED_LOCAL_MODEL_PATHS", "/models,/mnt/more models")
    assert Settings().allowed_local_model_paths == ["/models", "/mnt/more models"]
    clean_env.setenv("HFSERVE_ALLOWED_LOCAL_MODEL_PATHS", '["/a,b"]')
    assert Settings().allowed_local_model_paths == ["/a,b"]
