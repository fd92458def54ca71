"""Held-out evaluation with a model's own tokenizer: story separators and BOS as that
tokenizer defines them, and a reference that stays small for a large vocabulary."""

from __future__ import annotations

import numpy as np
from byom_helpers import (
    family_model,
    llama2_style_tokenizer,
    train_tokenizer,
    write_gguf,
    write_spm_gguf,
)

from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.evaluate import eval_tokens, story_separator
from llm_anatomy_tui.core.formats import load_model
from llm_anatomy_tui.core.model import init_random
from llm_anatomy_tui.core.quant_lab import EVAL_TOKENS, QuantLab

STORIES = ["Once upon a time a robot read.", "The end 12!"]


def test_a_llama2_vocabulary_has_no_endoftext_so_stories_end_with_eos_and_start_with_bos(
    tmp_path,
):
    ref, tokens, scores, types = llama2_style_tokenizer()
    model = load_model(
        write_spm_gguf(
            family_model("llama2", len(tokens)), tmp_path / "l2.gguf", tokens, scores, types
        )  # fmt: skip
    )
    enc = model.tokenizer
    bos, eos = tokens.index("<s>"), tokens.index("</s>")
    assert story_separator(enc) == eos
    want = []
    for story in STORIES:
        want += [bos] + ref.encode(story, add_special_tokens=False).ids + [eos]
    assert eval_tokens(enc, STORIES).tolist() == want


def test_a_vocabulary_with_endoftext_uses_it_between_stories(tmp_path):
    tok = train_tokenizer(320)  # <|endoftext|> is special token 0; EOS is <|im_end|>
    model = load_model(write_gguf(family_model("smollm", 320), tmp_path / "s.gguf", tok))
    enc = model.tokenizer
    sep = tok.token_to_id("<|endoftext|>")
    assert sep != enc.eot_token
    want = []
    for story in STORIES:
        want += tok.encode(story, add_special_tokens=False).ids + [sep]
    assert eval_tokens(enc, STORIES).tolist() == want


def test_a_large_vocabulary_compares_on_fewer_tokens_and_says_what_a_copy_costs():
    small = init_random(LlamaConfig(8193, 32, 64, 1, 2, 1, 256), seed=0)
    big_cfg = LlamaConfig(49152, 32, 64, 1, 2, 1, 256)
    big = init_random(big_cfg, seed=0)
    stream = np.arange(EVAL_TOKENS) % 300
    assert QuantLab(small, stream).n_eval_tokens == EVAL_TOKENS
    lab = QuantLab(big, stream)
    # the FP32 reference logits (tokens x vocabulary x 4 bytes) stay within 128 MB
    assert (
        lab.n_eval_tokens * big_cfg.vocab_size * 4
        <= 128 * 2**20
        < ((lab.n_eval_tokens + 1) * big_cfg.vocab_size * 4)
    )
    assert sum(w.size for w in lab.windows) == lab.n_eval_tokens
    assert lab.copy_bytes == big_cfg.parameter_count() * 4
