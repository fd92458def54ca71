"""Chapter 11's view-model against the lens arrays and the trace's shapes."""

from __future__ import annotations

import re

import numpy as np

from llm_anatomy_tui.core.architectures import REAL_MODELS, scale_table
from llm_anatomy_tui.core.logit_lens import block_lens
from llm_anatomy_tui.core.model import Trace, forward
from llm_anatomy_tui.views.block_view import (
    BLOCK_PARTS,
    kl_text,
    lens_rows,
    part_detail,
    percent,
    scale_rows,
)

TOKENS = [5, 17, 300, 8000, 42, 42, 7]


def test_lens_rows_are_the_lens(tiny_model) -> None:  # noqa: ANN001
    lens = block_lens(tiny_model, TOKENS)
    for t in (0, 3, len(TOKENS) - 1):
        rows = lens_rows(lens, t, lambda i: f"#{i}", top=3)
        assert [r.stage for r in rows] == [s.label for s in lens.stages]
        for s, row in enumerate(rows):
            assert row.norm == lens.norms[s, t] and row.kl == lens.kl[s, t]
            assert [tok for tok, _ in row.top] == [f"#{i}" for i in lens.top_ids[s, t, :3]]
            assert [p for _, p in row.top] == list(lens.top_probs[s, t, :3])
            assert row.p_final == lens.p_final[s, t] and row.rank_final == lens.rank_final[s, t]
            assert len(row.promoted) == (2 if s else 0)
        assert rows[-1].kl == 0.0 and rows[-1].rank_final == 0


def test_part_shapes_are_the_trace_shapes(tiny_model) -> None:  # noqa: ANN001
    trace = Trace()
    forward(tiny_model, TOKENS, trace=trace)
    rec = trace.layers[0]
    by_key = {p.key: part_detail(p, tiny_model.config, len(TOKENS)) for p in BLOCK_PARTS}

    def shape(a: np.ndarray) -> str:
        return "[" + ", ".join(map(str, a.shape)) + "]"

    assert shape(rec["attn_norm"]) in by_key["norm1"][1]
    assert shape(rec["attn_out"]) in by_key["attn"][2]
    assert f"q {shape(rec['q'])}" in by_key["attn"][2]
    assert f"k and v {shape(rec['k'])}" in by_key["attn"][2]
    assert f"hidden {shape(rec['hidden'])}" in by_key["ffn"][2]
    weights = tiny_model.tensors()
    for name, key in (("q_proj", "attn"), ("o_proj", "attn"), ("gate_proj", "ffn"),
                      ("down_proj", "ffn")):  # fmt: skip
        w = weights[f"model.layers.0.{'self_attn' if key == 'attn' else 'mlp'}.{name}.weight"]
        assert re.search(rf"{name}[^\[]*{re.escape(shape(w))}", by_key[key][3]), name
    assert all("chapter" in lines[-1] or "this screen" in lines[-1] for lines in by_key.values())


def test_formats() -> None:
    assert percent(1.0) == "100.0%" and percent(0.0) == "< 0.1%"
    assert kl_text(0.0) == "0" and kl_text(0.0004) == "< 0.001" and kl_text(12.3456) == "12.346"


def test_scale_rows_start_with_the_loaded_model(tiny_config) -> None:  # noqa: ANN001
    rows = scale_rows(scale_table(tiny_config, "tiny"))
    assert rows[0][:7] == ("tiny", str(tiny_config.num_hidden_layers),
                           f"{tiny_config.hidden_size:,}", str(tiny_config.num_attention_heads),
                           str(tiny_config.num_key_value_heads),
                           f"{tiny_config.intermediate_size:,}",
                           f"{tiny_config.max_position_embeddings:,}")  # fmt: skip
    assert [r[0] for r in rows[1:]] == [a.name for a in REAL_MODELS]
    assert rows[[a.name for a in REAL_MODELS].index("Llama-3.1-8B") + 1][7] == "500,000 (llama3 ×8)"
