"""Toy computations that chapters use where a toy is the point (and say so on screen).

Each lesson is a few plain functions over small, hand-designed numpy arrays that return
numbers; no Textual, no Rich. They are tested like the rest of the core.

- :mod:`.neuron` — one neuron, six activation functions, two linear layers collapsing
  into one (chapter 3).
- :mod:`.dense_net` — a 2 → 3 → 2 dense network with every weighted sum written out
  (chapter 4).
- :mod:`.toy_attention` — one sentence, 4-number vectors, Q/K/V, scores, softmax,
  weighted values (chapter 8).
"""
