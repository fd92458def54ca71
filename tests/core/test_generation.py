"""Step-by-step generation: records, rewind, branch, replay, stops, the context limit, costs."""

from __future__ import annotations

import doctest
import threading

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_anatomy_tui.core import generation
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.generation import (
    STOP_CONTEXT_FULL,
    STOP_END_OF_TEXT,
    STOP_MAX_TOKENS,
    STOP_SEQUENCE,
    Generation,
    GenerationStopped,
    decode_step_macs,
    forward_macs,
    kv_cache_bytes,
    kv_cache_bytes_for,
    step_rng,
    token_macs,
)
from llm_anatomy_tui.core.model import ContextOverflowError, forward, init_random
from llm_anatomy_tui.core.sampling import GREEDY, SamplingSettings
from llm_anatomy_tui.core.tokenizers import load_encoding

PROMPT = [3335, 290, 5396, 1294, 524]  # "If the human brain" in the model vocabulary
SAMPLED = SamplingSettings(temperature=1.0)


class FakeEncoding:
    """Token id -> bytes, with an end-of-text id: enough for the text features."""

    def __init__(self, pieces: dict[int, bytes], eot: int) -> None:
        self.pieces, self.eot_token = pieces, eot

    def decode_single_token_bytes(self, token: int) -> bytes:
        return self.pieces[token]


def test_module_doctests():
    assert doctest.testmod(generation).failed == 0


# -- records ----------------------------------------------------------------------------------


def test_prefill_then_decode_records(tiny_model):
    cfg = tiny_model.config
    gen = Generation(tiny_model, PROMPT, SAMPLED, seed=1)
    records = gen.generate(5)
    assert [r.index for r in records] == list(range(5))
    assert [r.position for r in records] == [5, 6, 7, 8, 9]
    assert [r.n_fed for r in records] == [5, 1, 1, 1, 1]  # prefill, then one token a step
    assert [r.cache_length for r in records] == [5, 6, 7, 8, 9]
    for r in records:
        s = r.cache_length
        assert r.cache_shape == (2, 2, cfg.num_key_value_heads, s, cfg.dim_head)
        assert r.cache_bytes == kv_cache_bytes_for(cfg, s) == int(np.prod(r.cache_shape)) * 4
        assert r.logits.shape == (cfg.vocab_size,) and r.logits.dtype == np.float32
        assert not r.logits.flags.writeable
        assert r.token == r.sampling.token and not r.forced
        assert 0 < r.prob <= 1 and 0 < r.raw_prob <= 1
        assert r.seconds > 0 and r.stop is None
        assert r.used_cache
    assert gen.tokens == tuple(PROMPT) + gen.generated
    assert gen.cache.nbytes == records[-1].cache_bytes
    assert records[0].macs == forward_macs(cfg, 5, 0)
    assert records[1].macs == decode_step_macs(cfg, 5, cached=True)


def test_record_logits_equal_a_full_recompute_at_every_step(tiny_model):
    gen = Generation(tiny_model, PROMPT, SAMPLED, seed=3)
    for r in gen.generate(30):
        full = forward(tiny_model, gen.tokens[: r.position])[-1]
        assert np.abs(full - r.logits).max() <= 1e-5
        again = gen.recompute(r.index)
        assert np.abs(again.logits - r.logits).max() <= 1e-5
        assert again.macs == decode_step_macs(tiny_model.config, r.position - 1, cached=False)


def test_cache_off_gives_the_same_logits_with_more_work(tiny_model):
    on = Generation(tiny_model, PROMPT, GREEDY).generate(12)
    gen_off = Generation(tiny_model, PROMPT, GREEDY, use_cache=False)
    off = gen_off.generate(12)
    assert [r.token for r in on] == [r.token for r in off]
    for a, b in zip(on, off, strict=True):
        assert np.abs(a.logits - b.logits).max() <= 1e-5
        assert not b.used_cache and b.n_fed == b.position and b.cache_length == 0
    assert all(b.macs > a.macs for a, b in zip(on[1:], off[1:], strict=True))
    # switching the cache back on catches up on every token it missed, in one call
    gen_off.use_cache = True
    r = gen_off.step()
    assert r.n_fed == r.position and r.cache_length == r.position


def test_records_can_carry_a_trace(tiny_model):
    cfg = tiny_model.config
    gen = Generation(tiny_model, PROMPT, GREEDY, record_trace=True)
    first, second = gen.generate(2)
    assert first.trace.layers[0]["weights"].shape == (cfg.num_attention_heads, 5, 5)
    w = second.trace.layers[1]["weights"]
    assert w.shape == (cfg.num_attention_heads, 1, 6)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(second.trace.logits[-1], second.logits, atol=1e-6)
    full = gen.trace_context()
    # the decode step's attention row is row 5 (its position) of a full traced pass
    np.testing.assert_allclose(full.layers[1]["weights"][:, 5:6, :6], w, atol=1e-5)


def test_top_alternatives(tiny_model):
    r = Generation(tiny_model, PROMPT, GREEDY).step()
    top = r.top(5)
    assert top[0][0] == r.token  # greedy picks the most likely token
    assert [t[2] for t in top] == sorted((t[2] for t in top), reverse=True)


# -- rewind, branch, replay, fork ---------------------------------------------------------------


def test_rewind_and_step_again_reproduces_the_same_steps(tiny_model):
    gen = Generation(tiny_model, PROMPT, SAMPLED, seed=11)
    first = gen.generate(10)
    gen.rewind(4)
    assert len(gen.steps) == 4 and gen.cache.length <= len(PROMPT) + 4
    again = gen.generate(6)
    assert [r.token for r in again] == [r.token for r in first[4:]]
    for a, b in zip(again, first[4:], strict=True):
        assert np.abs(a.logits - b.logits).max() <= 1e-5
        assert a.sampling.draw.u == b.sampling.draw.u
    gen.rewind(0)
    assert gen.tokens == tuple(PROMPT)
    assert [r.token for r in gen.generate(10)] == [r.token for r in first]


def test_branch_forces_a_token_and_continues_from_it(tiny_model):
    gen = Generation(tiny_model, PROMPT, GREEDY)
    original = gen.generate(8)
    other = (original[3].token + 1) % tiny_model.config.vocab_size
    branched = gen.branch(3, other)
    assert branched.forced and branched.token == other and branched.index == 3
    assert branched.sampling.token == original[3].token  # the sampler's view is kept
    assert gen.generated[:3] == tuple(r.token for r in original[:3])
    assert len(gen.steps) == 4
    rest = gen.generate(4)
    full = forward(tiny_model, gen.tokens[:-1])
    np.testing.assert_allclose(full[-1], rest[-1].logits, atol=1e-5)


def test_replay_with_the_same_seed_gives_the_same_text(tiny_model):
    enc = load_encoding("model")
    gen = Generation(tiny_model, PROMPT, SamplingSettings(temperature=0.9, top_k=50), seed=5,
                     encoding=enc)  # fmt: skip
    gen.generate(6)
    gen.settings = SamplingSettings(temperature=1.5)  # settings may change between steps
    gen.generate(6)
    gen.branch(7, 42)
    gen.generate(4)
    text, tokens = gen.text, gen.generated
    replayed = gen.replay()
    assert gen.generated == tokens and gen.text == text
    assert [r.sampling.settings for r in replayed][:6] == [SamplingSettings(0.9, 50)] * 6
    assert replayed[7].forced
    twin = Generation(tiny_model, PROMPT, SamplingSettings(temperature=0.9, top_k=50), seed=6,
                      encoding=enc)  # fmt: skip
    assert tuple(r.token for r in twin.generate(6)) != tokens[:6]


def test_preview_shows_exactly_what_step_will_do(tiny_model):
    gen = Generation(tiny_model, PROMPT, SAMPLED, seed=21)
    gen.generate(3)
    hot = SamplingSettings(temperature=2.0, top_k=30)
    peek = gen.preview(hot)
    assert len(gen.steps) == 3  # nothing was taken
    gen.settings = hot
    r = gen.step()
    assert r.token == peek.token and r.sampling.draw == peek.draw
    assert r.n_fed == 1  # the preview's forward pass was reused, not repeated
    # a past step under other settings: its own logits, its own draw
    past = gen.preview(GREEDY, index=1)
    assert past.token == int(np.argmax(gen.steps[1].logits))
    assert gen.preview(SAMPLED, index=1).draw == gen.steps[1].sampling.draw
    with pytest.raises(IndexError):
        gen.preview(index=99)


def test_toggling_cache_and_trace_between_preview_and_step(tiny_model):
    gen = Generation(tiny_model, PROMPT, GREEDY)
    gen.preview()  # runs the prefill with the cache
    gen.use_cache = False
    gen.preview()  # runs again without it
    gen.use_cache = True
    gen.record_trace = True
    r = gen.step()  # everything is cached: the last prompt token runs again, traced
    assert r.trace is not None and r.n_fed == 1
    full = forward(tiny_model, PROMPT)[-1]
    assert np.abs(full - r.logits).max() <= 1e-5


def test_step_rng_is_keyed_by_seed_and_step():
    assert step_rng(3, 7).random() == step_rng(3, 7).random()
    assert step_rng(3, 7).random() != step_rng(3, 8).random()
    assert step_rng(3, 7).random() != step_rng(4, 7).random()


def test_fork_is_independent(tiny_model):
    gen = Generation(tiny_model, PROMPT, SAMPLED, seed=2)
    before = tuple(r.token for r in gen.generate(3))
    twin = gen.fork()
    twin.branch(1, 7)
    twin.generate(2)
    assert gen.generated == before and twin.generated[1] == 7
    mine = gen.generate(2)
    ref_gen = Generation(tiny_model, PROMPT, SAMPLED, seed=2)
    assert [r.token for r in ref_gen.generate(5)][3:] == [r.token for r in mine]


def test_rewind_out_of_range(tiny_model):
    gen = Generation(tiny_model, PROMPT)
    gen.generate(2)
    with pytest.raises(IndexError):
        gen.rewind(3)
    with pytest.raises(IndexError):
        gen.recompute(2)


# -- stopping ---------------------------------------------------------------------------------


def test_context_window_policy(tiny_model):
    n = tiny_model.config.max_position_embeddings  # 64
    gen = Generation(tiny_model, list(range(1, n - 3)), SAMPLED, stop_tokens=())
    records = list(gen.iter_steps())
    assert len(records) == 4 and len(gen.tokens) == n
    assert records[-1].stop.reason == STOP_CONTEXT_FULL and "64 tokens" in records[-1].stop.message
    assert gen.done and gen.room == 0
    with pytest.raises(GenerationStopped, match="context window is full"):
        gen.step()
    gen.rewind(2)  # rewinding makes room again
    assert not gen.done and gen.room == 2
    # a prompt that fills the window leaves nothing to generate; a longer one is refused
    full = Generation(tiny_model, [1] * n)
    assert full.done and full.stop.reason == STOP_CONTEXT_FULL
    with pytest.raises(ContextOverflowError):
        Generation(tiny_model, [1] * (n + 1))
    with pytest.raises(ValueError, match="empty"):
        Generation(tiny_model, [])


def test_max_new_tokens(tiny_model):
    gen = Generation(tiny_model, PROMPT, SAMPLED, max_new_tokens=3, stop_tokens=())
    records = gen.generate(10)
    assert len(records) == 3 and records[-1].stop.reason == STOP_MAX_TOKENS
    with pytest.raises(ValueError):
        Generation(tiny_model, PROMPT, max_new_tokens=0)


def test_end_of_text_stops_and_carries_no_text(tiny_model):
    enc = load_encoding("model")
    gen = Generation(tiny_model, PROMPT, GREEDY, encoding=enc)
    assert gen.stop_tokens == {8192}
    for t in enc.encode(" Hello"):
        gen.step(token=t)
    r = gen.step(token=8192)
    assert r.stop.reason == STOP_END_OF_TEXT and r.new_text == ""
    assert gen.text == " Hello"
    with pytest.raises(GenerationStopped):
        gen.step()
    gen.rewind(len(gen.steps))  # continue past the end of text on purpose
    assert not gen.done
    gen.step()


def test_stop_sequence_across_tokens_is_cut_exactly(tiny_model):
    enc = FakeEncoding({1: b"The", 2: b" e", 3: b"nd", 4: b".", 5: b" More", 9: b"x"}, eot=9)
    gen = Generation(tiny_model, PROMPT, GREEDY, encoding=enc, stop_sequences=["e end", "The end"])
    shown = [gen.step(token=t).new_text for t in (4, 1, 2)]
    assert shown == [".", "", ""]  # "The" and " e" might begin a stop sequence: held back
    last = gen.step(token=3)
    assert last.stop.reason == STOP_SEQUENCE
    assert "".join(shown) + last.new_text == gen.text == "."


@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(st.sampled_from([b"a", b"b", b" ", b"\xc3", b"\xa9", b"\xc3\xa9", b"ab", b"\n"]),
                    min_size=1, max_size=12),
    stops=st.lists(st.sampled_from(["a", "ab", "b a", "é", "\n\n", "bb"]), max_size=2),
)  # fmt: skip
def test_streamed_text_is_the_generated_text_cut_before_the_first_stop(tiny_model, pieces, stops):
    """Whatever the tokens (including UTF-8 characters split across tokens), the pieces of
    text handed out step by step add up to exactly the text before the first stop."""
    vocab = {i: p for i, p in enumerate(dict.fromkeys(pieces))}
    ids = {p: i for i, p in vocab.items()}
    enc = FakeEncoding(vocab | {100: b""}, eot=100)
    gen = Generation(tiny_model, [1], GREEDY, encoding=enc, stop_sequences=stops, stop_tokens=())
    streamed = ""
    for piece in pieces:
        streamed += gen.step(token=ids[piece]).new_text
        if gen.done:
            break
    else:
        gen.max_new_tokens = len(gen.steps) + 1  # end here: the last step flushes
        streamed += gen.step(token=100).new_text
    produced = b"".join(vocab[t] for t in gen.generated if t != 100).decode("utf-8", "replace")
    cuts = [produced.find(s) for s in stops if s in produced]
    expected = produced[: min(cuts)] if cuts else produced
    if gen.stop.reason == STOP_SEQUENCE:
        assert streamed == gen.text == expected
    else:
        assert streamed == gen.text == produced


def test_from_text_and_real_tokenizer(tiny_model):
    enc = load_encoding("model")
    gen = Generation.from_text(tiny_model, "Once upon a time", enc, settings=SAMPLED, seed=4)
    assert gen.prompt == tuple(enc.encode("Once upon a time"))
    out = "".join(r.new_text for r in gen.generate(20))
    assert gen.text.startswith(out)


def test_extreme_settings_run(tiny_model):
    for s in (
        SamplingSettings(temperature=100.0),
        SamplingSettings(top_p=0.0),
        SamplingSettings(top_k=0, min_p=1.0),
        SamplingSettings(top_k=1, temperature=1e-6),
        SamplingSettings(repetition_penalty=10.0, frequency_penalty=2, presence_penalty=-2),
    ):
        recs = Generation(tiny_model, PROMPT, s, seed=1, stop_tokens=()).generate(5)
        assert len(recs) == 5 and all(np.isfinite(r.prob) for r in recs)  # fmt: skip


def test_bad_arguments(tiny_model):
    with pytest.raises(ValueError, match="seed"):
        Generation(tiny_model, PROMPT, seed=-1)
    with pytest.raises(ValueError, match="encoding"):
        Generation(tiny_model, PROMPT, stop_sequences=["x"])
    gen = Generation(tiny_model, PROMPT)
    with pytest.raises(ValueError, match="outside"):
        gen.step(token=10**6)


def test_driven_from_a_worker_thread(tiny_model):
    gen = Generation(tiny_model, PROMPT, SAMPLED, seed=9)
    out: list = []
    worker = threading.Thread(target=lambda: out.extend(gen.generate(10)))
    worker.start()
    worker.join()
    assert [r.token for r in out] == list(gen.generated)


# -- cost figures against a counted loop ------------------------------------------------------


COST_CONFIGS = [
    LlamaConfig(23, 16, 20, 2, 4, 2, 16),
    LlamaConfig(17, 8, 8, 1, 3, 1, 16, head_dim=6, tie_word_embeddings=False),
    LlamaConfig(11, 16, 24, 3, 2, 2, 16),
]


@pytest.mark.parametrize("cfg", COST_CONFIGS, ids=["gqa", "mqa-headdim", "mha"])
def test_multiply_adds_match_a_counted_loop(cfg):
    model = init_random(cfg, seed=0)
    tensors = {k: v.astype(np.float64).tolist() for k, v in model.tensors().items()}
    tokens = list(np.random.default_rng(0).integers(0, cfg.vocab_size, 9))
    for position in (0, 3, 8):
        n = position + 1
        whole = ref.Counter()
        ref.forward(tensors, cfg.to_dict(), tokens[:n], whole, logits_at="last")
        before = ref.Counter()
        ref.forward(tensors, cfg.to_dict(), tokens[:position], before, logits_at="none")
        assert decode_step_macs(cfg, position, cached=False) == whole.macs
        assert decode_step_macs(cfg, position, cached=True) == whole.macs - before.macs
        assert token_macs(cfg, n) == whole.macs - before.macs
    every = ref.Counter()
    ref.forward(tensors, cfg.to_dict(), tokens, every, logits_at="all")
    assert forward_macs(cfg, len(tokens), all_logits=True) == every.macs


def test_cache_saves_work_growing_with_position():
    cfg = LlamaConfig(8193, 128, 384, 4, 4, 2, 512)
    ratio = [decode_step_macs(cfg, p, False) / decode_step_macs(cfg, p, True) for p in (0, 10, 100)]
    assert ratio[0] == 1.0 and ratio[0] < ratio[1] < ratio[2]


def test_kv_cache_bytes_formula():
    # Llama-3-8B-like: 32 layers, 8 KV heads of 128, fp16, 8k context = 1 GiB
    assert (
        kv_cache_bytes(layers=32, kv_heads=8, head_dim=128, positions=8192, bytes_per_value=2)
        == 2**30
    )
    cfg = LlamaConfig(8193, 128, 384, 4, 4, 2, 512)
    assert kv_cache_bytes_for(cfg, 10) == 2 * 4 * 2 * 32 * 10 * 4


# -- stop sequences set mid-way ------------------------------------------------------------


def _gen_with_text(model, encoding, at_least: str, steps: int = 60):  # noqa: ANN001
    """A seeded generation stepped until its text contains ``at_least`` (or skip)."""
    gen = Generation(model, encoding.encode_ordinary("Once upon a time"), seed=3,
                     encoding=encoding, stop_tokens=())  # fmt: skip
    for _ in range(steps):
        gen.step()
        if at_least in gen.text:
            return gen
    pytest.skip(f"the seeded generation never produced {at_least!r}")


def test_a_stop_sequence_set_later_ignores_text_generated_before(tiny_model):
    enc = load_encoding("model")
    gen = _gen_with_text(tiny_model, enc, "e")
    before = gen.text
    gen.stop_sequences = ("e",)  # already in the text: must not fire on it
    rec = gen.step()
    new = gen.text[len(before) :]
    # the reference: the same steps without any stop sequence
    twin = Generation(tiny_model, list(gen.prompt), seed=3, encoding=enc, stop_tokens=())
    for r in gen.steps:
        twin.step(token=r.token)
    full = twin.text
    assert full.startswith(before)
    if "e" in full[len(before) :]:
        assert rec.stop is not None and rec.stop.sequence == "e"
        assert gen.text == full[: len(before) + full[len(before) :].index("e")]
    else:
        assert rec.stop is None and not gen.done and new == full[len(before) :]


def test_stop_sequence_fires_only_on_new_text_and_clearing_it_resumes(tiny_model):
    enc = load_encoding("model")
    gen = _gen_with_text(tiny_model, enc, " ")
    gen.stop_sequences = (" ",)
    for _ in range(60):
        rec = gen.step()
        if gen.done:
            break
    else:
        pytest.skip("no space generated after the stop was set")
    assert rec.stop.reason == "stop_sequence" and rec.stop.sequence == " "
    gen.stop_sequences = ()  # the stop that ended it is gone: it may go on
    assert not gen.done
    gen.step()
    assert len(gen.steps) == rec.index + 2


def test_rewind_lets_regenerated_text_match_again(tiny_model):
    enc = load_encoding("model")
    gen = _gen_with_text(tiny_model, enc, " ")
    gen.stop_sequences = (" ",)
    gen.rewind(0)  # everything generated from here on is new
    gen.generate(60)
    assert gen.done and gen.stop.sequence == " "
