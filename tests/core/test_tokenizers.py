"""Our offline encodings against tiktoken's own, the model vocabulary, and broken assets."""

from __future__ import annotations

import gzip

import pytest
import tiktoken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_anatomy_tui.core import tokenizers
from llm_anatomy_tui.core.tokenizers import (
    MODEL_EOT_ID,
    MODEL_VOCAB_RANKS,
    RANK_FILES,
    TokenizerAssetError,
    load_encoding,
    read_rank_file,
)
from llm_anatomy_tui.views.token_pieces import piece_display, token_pieces

SEED = (
    "If the human brain were so simple that we could understand it, "
    "we would be so simple that we couldn't."
)

# Text that stresses the split patterns: mixed scripts, digits, whitespace runs,
# contractions, emoji with joiners, control characters.
awkward_text = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list(" \t\n\r'sSdDlLvVrReE0123456789.,!?-_/\\()")),
        st.sampled_from(["\u200d", "\ufe0f", "👍", "🏽", "世", "界", "é", "ß", "ا", "ש", "\x00"]),
    ),
    max_size=200,
)

HYPOTHESIS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_seed_sentence(name, tiktoken_reference):
    ours = load_encoding(name).encode(SEED)
    assert ours == tiktoken_reference[name].encode(SEED)
    if name == "o200k_base":
        assert len(SEED) == 102 and len(ours) == 22
        assert ours[:5] == [3335, 290, 5396, 12891, 1504]


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
@HYPOTHESIS
@given(text=awkward_text)
def test_encodings_equal_tiktokens_own(name, text, tiktoken_reference):
    ours = load_encoding(name)
    ref = tiktoken_reference[name]
    ids = ours.encode_ordinary(text)
    assert ids == ref.encode_ordinary(text)
    assert ours.encode(text, disallowed_special=()) == ref.encode(text, disallowed_special=())
    assert ours.decode(ids) == text  # round trip
    assert b"".join(ours.decode_single_token_bytes(t) for t in ids) == text.encode()


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_special_tokens_equal_tiktokens_own(name, tiktoken_reference):
    ours, ref = load_encoding(name), tiktoken_reference[name]
    assert ours.special_tokens_set == ref.special_tokens_set
    assert ours.n_vocab == ref.n_vocab
    for special in ref.special_tokens_set:
        assert ours.encode(special, allowed_special="all") == ref.encode(
            special, allowed_special="all"
        )


@HYPOTHESIS
@given(text=awkward_text)
def test_model_vocabulary_round_trips_and_stays_in_range(text):
    model = load_encoding("model")
    ids = model.encode_ordinary(text)
    assert all(0 <= t < MODEL_VOCAB_RANKS for t in ids)
    assert model.decode(ids) == text


@HYPOTHESIS
@given(text=st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=120))
def test_model_ids_are_o200k_ids(text):
    """Where o200k_base itself only uses its first 8,192 ranks, the model vocabulary gives
    exactly the same IDs; otherwise it spells the text with smaller pieces of the same
    table, and every piece is the o200k token with that ID."""
    o200k, model = load_encoding("o200k_base"), load_encoding("model")
    o_ids, m_ids = o200k.encode_ordinary(text), model.encode_ordinary(text)
    if all(t < MODEL_VOCAB_RANKS for t in o_ids):
        assert m_ids == o_ids
    for t in m_ids:
        assert model.decode_single_token_bytes(t) == o200k.decode_single_token_bytes(t)


def test_model_vocabulary_is_the_first_8192_o200k_ranks_plus_endoftext():
    o200k, model = load_encoding("o200k_base"), load_encoding("model")
    assert model.n_vocab == MODEL_VOCAB_RANKS + 1 == 8193
    for rank in range(MODEL_VOCAB_RANKS):
        assert model.decode_single_token_bytes(rank) == o200k.decode_single_token_bytes(rank)
    assert model.encode("<|endoftext|>", allowed_special="all") == [MODEL_EOT_ID]
    assert model.encode_ordinary("<|endoftext|>") != [MODEL_EOT_ID]  # plain text stays text


# Two o200k tokens that the split pattern can never produce from text, because it
# always cuts their text in two: " I'" (the contraction suffix is matched on its own)
# and "\n//" (newlines are split from what follows). They are in the vocabulary all
# the same, and byte-pair merging alone does produce them (see the next test).
UNREACHABLE_THROUGH_SPLIT = {3413: " I'", 3914: "\n//"}


def test_every_model_token_encodes_to_itself():
    model = load_encoding("model")
    o200k = load_encoding("o200k_base")
    # 1. Through the real encoder (split pattern + BPE), for every token that is text.
    not_itself = {}
    partial_utf8 = 0
    for rank in range(MODEL_VOCAB_RANKS):
        raw = model.decode_single_token_bytes(rank)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            partial_utf8 += 1
            continue
        ids = model.encode_ordinary(text)
        assert ids == o200k.encode_ordinary(text)
        if ids != [rank]:
            not_itself[rank] = text
    assert not_itself == UNREACHABLE_THROUGH_SPLIT
    assert partial_utf8 > 0  # pieces of multi-byte characters exist, checked below

    # 2. Byte-pair merging alone (no split pattern), for all 8,192 tokens including the
    # byte pieces: the truncated rank table is merge-closed.
    whole = tiktoken.Encoding(
        name="model-no-split",
        pat_str=r"[\s\S]+",
        mergeable_ranks={model.decode_single_token_bytes(r): r for r in range(MODEL_VOCAB_RANKS)},
        special_tokens={},
    )
    for rank in range(MODEL_VOCAB_RANKS):
        raw = model.decode_single_token_bytes(rank)
        assert whole._encode_bytes(raw) == [rank], rank


def test_byte_pieces_never_show_mojibake():
    model = load_encoding("model")
    ids = model.encode_ordinary("世界 👨‍👩‍👧")
    pieces = token_pieces(model, ids)
    assert "".join(p.raw.decode("latin-1") for p in pieces).encode("latin-1") == (
        "世界 👨‍👩‍👧".encode()
    )
    for piece in pieces:
        assert "\ufffd" not in piece.display
        if piece.text is None:
            assert "‹" in piece.display
    assert piece_display("世".encode()[:2]) == "‹E4 B8›"


# -- broken assets -------------------------------------------------------------------


def test_missing_rank_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "o200k_base.tiktoken.gz"
    with pytest.raises(TokenizerAssetError) as info:
        read_rank_file(path, RANK_FILES["o200k_base"].sha256)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "missing" in message
    assert "reinstall" in message


def test_corrupt_rank_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "cl100k_base.tiktoken.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"IQ== 0\nIg== 1\n")
    with pytest.raises(TokenizerAssetError) as info:
        read_rank_file(path, RANK_FILES["cl100k_base"].sha256)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "corrupt" in message


def test_unreadable_rank_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "o200k_base.tiktoken.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(TokenizerAssetError) as info:
        read_rank_file(path, RANK_FILES["o200k_base"].sha256)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_building_from_a_broken_asset_dir_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tokenizers, "assets_dir", lambda: tmp_path)
    with pytest.raises(TokenizerAssetError, match="cl100k_base.tiktoken.gz"):
        tokenizers._ranks.__wrapped__("cl100k_base")  # bypass the process-wide cache


def test_shipped_rank_files_verify():
    for name, spec in RANK_FILES.items():
        ranks = read_rank_file(tokenizers.assets_dir() / spec.filename, spec.sha256)
        assert len(ranks) > 100_000, name


def test_first_256_ranks_are_the_single_bytes():
    """What the chapter says: the model's 8,192 entries are the 256 single bytes plus the
    7,936 earliest merges of o200k_base."""
    model = load_encoding("model")
    singles = [r for r in range(MODEL_VOCAB_RANKS) if len(model.decode_single_token_bytes(r)) == 1]
    assert singles == list(range(256))
