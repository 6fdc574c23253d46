"""The Messages service's own mappings: sampling fields and stop reasons (the run loop is exercised end to
end in tests/integration/test_anthropic_api.py)."""

from __future__ import annotations

import pytest

from app.engine.types import FinishEvent, ModelInfo
from app.protocol.anthropic import MessagesRequest
from app.serving.anthropic_messages import sampling, stop_reason
from app.serving.params import to_sampling_params


def _finish(reason: str = "stop", tokens: int = 5, stop: str | None = None) -> FinishEvent:
    detail = {"stop_sequence": stop} if stop else None
    return FinishEvent("msg_1", reason, 10, tokens, detail=detail)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("finish", "called", "expected"),
    [
        (_finish(), False, ("end_turn", None)),
        (_finish(), True, ("tool_use", None)),
        (_finish(stop="\n\nHuman:"), False, ("stop_sequence", "\n\nHuman:")),
        (_finish("length", tokens=16), False, ("max_tokens", None)),
        (_finish("length", tokens=16), True, ("max_tokens", None)),
        (_finish("length", tokens=9), False, ("model_context_window_exceeded", None)),
    ],
)
def test_stop_reason(finish: FinishEvent, called: bool, expected: tuple[str, str | None]) -> None:
    assert stop_reason(finish, called, max_tokens=16) == expected


def test_sampling_takes_only_anthropics_fields() -> None:
    req = MessagesRequest.model_validate(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4000,
            "temperature": 0.5,
            "top_p": 0.9,
            "top_k": 20,
            "stop_sequences": ["END"],
            "n": 3,  # not an Anthropic field: never reaches the engine
            "seed": 1,
        }
    )
    info = ModelInfo(name="m", max_context=100, eos_token_ids=(1,), generation_defaults={})
    params = to_sampling_params(sampling(req), info=info, prompt_tokens=40)
    assert (params.temperature, params.top_p, params.top_k, params.stop) == (0.5, 0.9, 20, ("END",))
    assert (params.n, params.seed, params.max_tokens) == (1, None, 60)  # capped to the context's room
