"""Toy computations that chapters use where a toy is the point (and say so on screen).

Each lesson is a few plain functions over small, hand-designed numpy arrays that return
numbers; no Textual, no Rich. They are tested like the rest of the core.

- :mod:`.toy_attention` — one sentence, 4-number vectors, Q/K/V, scores, softmax,
  weighted values (chapter 8).
"""
