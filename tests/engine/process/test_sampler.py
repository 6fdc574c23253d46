"""Per-row sampling on hand-made logits: one row at a time, and rows with different parameters together."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import torch

from app.engine.process.sampler import BatchSampler, SequenceSampling
from app.engine.types import SamplingParams

CPU = torch.device("cpu")
VOCAB = 8
# Token 3 is the argmax; 5 is close behind; 0 and 7 are negative.
LOGITS = torch.tensor([-1.0, 0.5, 1.0, 4.0, 0.0, 3.5, 2.0, -2.0])
ARGMAX = 3


class OneRow:
    """A batch of one: the sampler as a single request sees it."""

    def __init__(self, params: SamplingParams, prompt_ids: list[int], vocab: int) -> None:
        self.params = params
        self.row = SequenceSampling(params, prompt_ids, vocab, CPU)
        self.batch = BatchSampler(vocab, CPU)

    def sample(self, logits: torch.Tensor) -> int:
        return self.batch.sample(logits[None, :], [self.row])[0].token_id

    def observe(self, token_id: int) -> None:
        self.row.observe(token_id)

    def adjusted_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return self.row.adjust(logits[: self.batch.vocab_size].float())


def sampler(prompt_ids: tuple[int, ...] = (), vocab: int = VOCAB, **params: Any) -> OneRow:
    params.setdefault("max_tokens", 16)
    return OneRow(SamplingParams(**params), list(prompt_ids), vocab)


def draws(s: OneRow, n: int = 200, logits: torch.Tensor = LOGITS) -> list[int]:
    return [s.sample(logits) for _ in range(n)]


def test_greedy_is_argmax() -> None:
    s = sampler(temperature=0.0)
    assert s.params.greedy
    assert draws(s, 20) == [ARGMAX] * 20
    other = torch.tensor([5.0, -1.0, 9.0, 0.0])
    assert sampler(vocab=4, temperature=0.0).sample(other) == 2


def test_logits_beyond_the_vocabulary_are_ignored() -> None:
    """Embedding rows past the vocabulary (padding) never win, even with the largest logit."""
    padded = torch.cat([LOGITS, torch.tensor([100.0, 100.0])])
    assert sampler(temperature=0.0).sample(padded) == ARGMAX
    assert set(draws(sampler(seed=1, temperature=1.0), 100, padded)) <= set(range(VOCAB))


def test_sampling_at_temperature_one_visits_several_tokens() -> None:
    counts = Counter(draws(sampler(seed=0, temperature=1.0), 400))
    assert len(counts) >= 3
    assert counts.most_common(1)[0][0] == ARGMAX


def test_same_seed_gives_the_same_sequence() -> None:
    first = draws(sampler(seed=1234, temperature=1.5), 100)
    second = draws(sampler(seed=1234, temperature=1.5), 100)
    assert first == second
    assert len(set(first)) > 1  # really sampled, not greedy


def test_different_seeds_give_different_sequences() -> None:
    assert draws(sampler(seed=1, temperature=1.5), 100) != draws(sampler(seed=2, temperature=1.5), 100)


def test_unseeded_requests_differ() -> None:
    assert draws(sampler(temperature=1.5), 100) != draws(sampler(temperature=1.5), 100)


def test_seeded_sequence_is_independent_of_interleaving() -> None:
    """Two requests sampled alternately each get the sequence they would get alone."""
    alone = draws(sampler(seed=7, temperature=1.5), 50)
    a, b = sampler(seed=7, temperature=1.5), sampler(seed=8, temperature=1.5)
    interleaved = []
    for _ in range(50):
        interleaved.append(a.sample(LOGITS))
        b.sample(LOGITS)
    assert interleaved == alone


def test_sampling_does_not_touch_the_global_rng() -> None:
    state = torch.random.get_rng_state()
    draws(sampler(seed=99, temperature=1.0, top_k=4, top_p=0.9, min_p=0.01), 50)
    draws(sampler(temperature=1.0), 50)  # unseeded too
    assert torch.equal(torch.random.get_rng_state(), state)


def test_global_seed_does_not_change_a_seeded_request() -> None:
    torch.manual_seed(0)
    first = draws(sampler(seed=5, temperature=1.0), 50)
    torch.manual_seed(12345)
    assert draws(sampler(seed=5, temperature=1.0), 50) == first


def test_top_k_one_always_picks_argmax() -> None:
    assert set(draws(sampler(seed=3, temperature=1.0, top_k=1), 200)) == {ARGMAX}


def test_top_k_two_keeps_the_two_best() -> None:
    assert set(draws(sampler(seed=3, temperature=2.0, top_k=2), 300)) == {3, 5}


def test_top_k_zero_or_vocab_size_disables_it() -> None:
    for top_k in (0, VOCAB):
        assert len(set(draws(sampler(seed=3, temperature=2.0, top_k=top_k), 400))) > 2


def test_tiny_top_p_keeps_only_the_top_token() -> None:
    assert set(draws(sampler(seed=4, temperature=2.0, top_p=1e-6), 200)) == {ARGMAX}


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    probs = torch.softmax(LOGITS, -1)
    # Top two tokens (3 and 5) hold more than p: the third (6) is cut, the second is kept.
    top_p = float(probs[3] + probs[5] * 0.5)
    assert set(draws(sampler(seed=4, temperature=1.0, top_p=top_p), 300)) == {3, 5}


def test_min_p_filters_tokens_below_a_fraction_of_the_best() -> None:
    probs = torch.softmax(LOGITS, -1)
    # Keeps tokens with prob >= 0.5 * max: 3 and 5 (exp(-0.5) ~ 0.61), not 6 (exp(-2) ~ 0.14).
    assert probs[5] >= 0.5 * probs[3] > probs[6]
    assert set(draws(sampler(seed=5, temperature=1.0, min_p=0.5), 300)) == {3, 5}


def test_logit_bias_plus_100_forces_a_token() -> None:
    assert draws(sampler(temperature=0.0, logit_bias={7: 100.0}), 5) == [7] * 5
    assert set(draws(sampler(seed=6, temperature=1.0, logit_bias={0: 100.0}), 100)) == {0}


def test_logit_bias_minus_100_bans_the_argmax() -> None:
    assert sampler(temperature=0.0, logit_bias={ARGMAX: -100.0}).sample(LOGITS) == 5
    assert ARGMAX not in draws(sampler(seed=6, temperature=1.0, logit_bias={ARGMAX: -100.0}), 300)


def test_adjusted_logits_without_options_are_the_logits() -> None:
    assert torch.equal(sampler().adjusted_logits(LOGITS), LOGITS)


def test_repetition_penalty_divides_positive_and_multiplies_negative_seen_logits() -> None:
    s = sampler(prompt_ids=(3, 0), repetition_penalty=2.0)
    scores = s.adjusted_logits(LOGITS)
    assert scores[3] == pytest.approx(2.0)  # 4.0 / 2
    assert scores[0] == pytest.approx(-2.0)  # -1.0 * 2
    unseen = [i for i in range(VOCAB) if i not in (0, 3)]
    assert torch.equal(scores[unseen], LOGITS[unseen])


def test_repetition_penalty_also_covers_generated_tokens() -> None:
    s = sampler(repetition_penalty=1.5)
    assert s.adjusted_logits(LOGITS)[5] == pytest.approx(3.5)
    s.observe(5)
    s.observe(5)  # seen is seen: the penalty does not compound
    assert s.adjusted_logits(LOGITS)[5] == pytest.approx(3.5 / 1.5)


def test_repetition_penalty_changes_the_greedy_choice() -> None:
    s = sampler(prompt_ids=(ARGMAX,), temperature=0.0, repetition_penalty=2.0)
    assert s.sample(LOGITS) == 5  # 4.0 / 2 = 2.0 < 3.5


def test_repetition_penalty_ignores_out_of_range_prompt_ids() -> None:
    s = sampler(prompt_ids=(3, VOCAB + 10, -1), repetition_penalty=2.0)
    assert s.adjusted_logits(LOGITS)[3] == pytest.approx(2.0)


def test_presence_and_frequency_penalties_follow_openai() -> None:
    """logit[j] - count[j] * frequency_penalty - (count[j] > 0) * presence_penalty, over output tokens."""
    s = sampler(prompt_ids=(1,), presence_penalty=0.5, frequency_penalty=0.25)
    for token in (3, 3, 3, 6):
        s.observe(token)
    scores = s.adjusted_logits(LOGITS)
    assert scores[3] == pytest.approx(4.0 - 3 * 0.25 - 0.5)
    assert scores[6] == pytest.approx(2.0 - 1 * 0.25 - 0.5)
    assert scores[1] == pytest.approx(0.5)  # prompt tokens are not penalised
    assert scores[5] == pytest.approx(3.5)


def test_negative_penalties_encourage_repetition() -> None:
    s = sampler(temperature=0.0, presence_penalty=-1.0, frequency_penalty=-0.5)
    assert s.sample(LOGITS) == ARGMAX
    for _ in range(3):
        s.observe(6)
    assert s.adjusted_logits(LOGITS)[6] == pytest.approx(2.0 + 1.0 + 3 * 0.5)
    assert s.sample(LOGITS) == 6  # 4.5 > 4.0


def test_penalties_and_bias_apply_before_greedy_argmax() -> None:
    s = sampler(temperature=0.0, frequency_penalty=1.0)
    assert s.sample(LOGITS) == ARGMAX
    s.observe(ARGMAX)
    assert s.sample(LOGITS) == 5  # 4.0 - 1.0 = 3.0 < 3.5


def test_sampler_does_not_modify_the_logits_tensor() -> None:
    logits = LOGITS.clone()
    s = sampler(prompt_ids=(3,), seed=0, repetition_penalty=2.0, presence_penalty=1.0, logit_bias={1: 5.0}, top_k=3)
    s.observe(5)
    s.sample(logits)
    assert torch.equal(logits, LOGITS)


# -- several rows in one call -------------------------------------------------------------------


def rows(*params: SamplingParams) -> list[SequenceSampling]:
    return [SequenceSampling(p, [], VOCAB, CPU) for p in params]


def test_rows_with_different_parameters_in_one_batch() -> None:
    batch = BatchSampler(VOCAB, CPU)
    logits = LOGITS.repeat(4, 1)
    greedy, forced, top1, seeded = rows(
        SamplingParams(max_tokens=1, temperature=0.0),
        SamplingParams(max_tokens=1, logit_bias={7: 100.0}),
        SamplingParams(max_tokens=1, temperature=1.0, top_k=1),
        SamplingParams(max_tokens=1, temperature=1.5, seed=11),
    )
    alone = [OneRow(SamplingParams(max_tokens=1, temperature=1.5, seed=11), [], VOCAB).sample(LOGITS) for _ in range(1)]
    for step in range(30):
        draws_ = batch.sample(logits, [greedy, forced, top1, seeded])
        assert [d.token_id for d in draws_[:3]] == [ARGMAX, 7, ARGMAX]
        if step == 0:
            assert draws_[3].token_id == alone[0]  # a seeded row ignores its neighbours


def test_seeded_row_matches_itself_alone_over_many_steps() -> None:
    params = SamplingParams(max_tokens=1, temperature=1.3, top_p=0.95, seed=2024)
    alone = draws(OneRow(params, [], VOCAB), 60)
    batch = BatchSampler(VOCAB, CPU)
    seeded, noisy = rows(params, SamplingParams(max_tokens=1, temperature=2.0))
    together = [batch.sample(LOGITS.repeat(2, 1), [seeded, noisy])[0].token_id for _ in range(60)]
    assert together == alone


def test_logprobs_only_for_rows_that_ask() -> None:
    batch = BatchSampler(VOCAB, CPU)
    plain, with_top = rows(
        SamplingParams(max_tokens=1, temperature=0.0), SamplingParams(max_tokens=1, temperature=0.0, logprobs=2)
    )
    first, second = batch.sample(LOGITS.repeat(2, 1), [plain, with_top])
    assert first.logprob is None and first.top == ()
    expected = torch.log_softmax(LOGITS, dim=-1)
    assert second.logprob == pytest.approx(float(expected[ARGMAX]))
    assert [t for t, _ in second.top] == [3, 5]
    assert second.top[1][1] == pytest.approx(float(expected[5]))


@pytest.mark.parametrize("settings", [{"temperature": 0.0}, {"temperature": 1.0, "seed": 3}])
def test_forced_tokens_are_drawn_in_order_whatever_the_logits(settings: dict[str, Any]) -> None:
    s = sampler(**settings)
    s.row.force([7, 0])  # the two least likely tokens
    for expected in (7, 0):
        token = s.sample(LOGITS)
        assert token == expected
        s.observe(token)
    assert not s.row.adjusts_logits  # nothing left to force: the row samples as before


def test_a_forced_token_beats_bias_and_penalties_then_greedy_resumes() -> None:
    s = sampler(temperature=0.0, logit_bias={ARGMAX: 100.0}, repetition_penalty=2.0)
    s.row.force([0])
    token = s.sample(LOGITS)
    assert token == 0
    s.observe(token)
    assert s.row.adjusts_logits  # bias and penalty still apply
    assert s.sample(LOGITS) == ARGMAX
