"""Training helpers of the tiny chat model: padded vocabularies, length-bucketed batches, seeded torch."""

from __future__ import annotations

import torch

from app.demo.training import make_batches, padded, seeded


def test_vocabularies_round_up_to_a_multiple() -> None:
    assert [padded(n) for n in (1, 64, 65, 2048)] == [64, 64, 128, 2048]
    assert padded(10, multiple=8) == 16


def test_batches_are_right_padded_with_labels_on_the_completion_only() -> None:
    pairs = [([1, 2], [3, 9]), ([4], [5, 9]), ([1] * 20, [6, 9])]
    batches = make_batches(pairs, pad_id=0)
    assert [len(batch["input_ids"]) for batch in batches] == [2, 1]  # the long chat is not padded to
    short = batches[0]
    assert short["input_ids"].tolist() == [[4, 5, 9, 0], [1, 2, 3, 9]]
    assert short["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert short["labels"].tolist() == [[-100, 5, 9, -100], [-100, -100, 3, 9]]


def test_seeded_blocks_repeat_and_leave_the_callers_torch_alone() -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    with seeded(7) as gen:
        first = torch.rand(3, generator=gen)
        assert torch.get_num_threads() == 1
    with seeded(7) as gen:
        assert torch.equal(torch.rand(3, generator=gen), first)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(1), expected_next)  # the global RNG is where the caller left it
