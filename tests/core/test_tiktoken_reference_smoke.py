from llm_anatomy_tui.core.tokenizers import load_encoding

SEED = "If the human brain were so simple that we could understand it, we would be so simple that we couldn't."


def test_reference_fixture_is_tiktokens_own(tiktoken_reference):
    ref = tiktoken_reference["o200k_base"]
    ids = ref.encode(SEED)
    assert len(ids) == 22 and ids[:5] == [3335, 290, 5396, 12891, 1504]
    assert load_encoding("o200k_base").encode(SEED) == ids
