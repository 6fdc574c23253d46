"""huggingface_hub's ``InferenceClient(base_url=...)``: ``chat_completion`` plain and streamed, with TGI's
``response_format`` (``{"type": "json", "value": <schema>}``, and the ``json_object`` form it also sends),
and with tools."""

from __future__ import annotations

import json

import jsonschema
import pytest
from huggingface_hub import InferenceClient

from app.demo.canned_chats import CAPITAL_ANSWER
from tests.fixtures.tiny_models import CHAT_MODEL_ID, NEVER_EOS_MODEL_ID
from tests.fixtures.tool_chats import FORECAST_ARGS, FORECAST_QUESTION, FORECAST_TOOL
from tests.fixtures.tool_models import LLAMA3_MODEL_ID

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 16}, "country": {"enum": ["France", "Germany"]}},
    "required": ["name", "country"],
    "additionalProperties": False,
}


@pytest.fixture
def client(base_url: str, monkeypatch: pytest.MonkeyPatch) -> InferenceClient:
    # The suite keeps the Hub offline, which InferenceClient applies to every URL, even loopback ones.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    return InferenceClient(base_url=base_url, api_key="unused")


def test_chat_completion_and_its_stream_agree(client: InferenceClient) -> None:
    output = client.chat_completion(CAPITAL, model=CHAT_MODEL_ID, temperature=0, extra_body=NO_THINKING)
    assert output.choices[0].message.content == CAPITAL_ANSWER
    assert output.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat_completion(
            CAPITAL,
            model=CHAT_MODEL_ID,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=NO_THINKING,
        )
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == CAPITAL_ANSWER
    usage, streamed = output.usage, chunks[-1].usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)


@pytest.mark.parametrize("kind", ["json", "json_object"])
@pytest.mark.parametrize("model", [CHAT_MODEL_ID, NEVER_EOS_MODEL_ID])
def test_response_format_with_a_schema_is_enforced(client: InferenceClient, model: str, kind: str) -> None:
    response_format = {"type": kind, "value": SCHEMA}
    kwargs = {"model": model, "temperature": 0, "max_tokens": 80, "extra_body": NO_THINKING}
    output = client.chat_completion(CAPITAL, response_format=response_format, **kwargs)  # type: ignore[arg-type]
    content = output.choices[0].message.content
    assert output.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(content), SCHEMA)
    chunks = client.chat_completion(CAPITAL, response_format=response_format, stream=True, **kwargs)  # type: ignore[arg-type]
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == content


def test_tools_give_a_parsed_call(client: InferenceClient) -> None:
    output = client.chat_completion(
        [{"role": "user", "content": FORECAST_QUESTION}], model=LLAMA3_MODEL_ID, tools=[FORECAST_TOOL], temperature=0
    )
    [call] = output.choices[0].message.tool_calls
    assert call.function.name == "get_forecast"
    arguments = call.function.arguments
    assert (json.loads(arguments) if isinstance(arguments, str) else arguments) == FORECAST_ARGS
