"""The checks the pretrained backbones share (matgnn.models.pretrained_blocks)."""

from __future__ import annotations

import logging

import pytest

from matgnn.models.pretrained_blocks import chosen_blocks, warn_on_another_release


def test_chosen_blocks_default_to_all_and_refuse_out_of_range_or_repeated():
    assert chosen_blocks("Net", None, 4) == (0, 1, 2, 3)
    assert chosen_blocks("Net", [3, 1], 4) == (3, 1)
    with pytest.raises(ValueError, match=r"Net blocks must be integers from 0 to 3, got \[4\]"):
        chosen_blocks("Net", [4], 4)
    with pytest.raises(ValueError, match=r"from 0 to 3, got \[-1\]"):
        chosen_blocks("Net", [-1], 4)
    with pytest.raises(ValueError, match="from 0 to 3, got \\[\\]"):
        chosen_blocks("Net", [], 4)
    with pytest.raises(ValueError, match=r"Net blocks must be distinct, got \[1, 1\]"):
        chosen_blocks("Net", [1, 1], 4)


def test_another_release_is_named_in_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="matgnn.models.pretrained_blocks"):
        warn_on_another_release("CHGNet", "chgnet", "0.4.2", "0.4.2")
        assert not caplog.records
        warn_on_another_release("CHGNet", "chgnet", "0.5.0", "0.4.2")
    assert caplog.messages == [
        "CHGNet backbone: written for chgnet 0.4.2, chgnet 0.5.0 is installed"
    ]
