"""Training in numpy: a hand-written backward pass, optimizers, data loading and a trainer.

- :mod:`.backward` — the gradient of every operation of the forward pass, and the whole
  model's loss and gradients for a batch of token windows.
- :mod:`.optim` — SGD, SGD with momentum, Adam and AdamW as small step functions with
  explicit state; the warmup + cosine learning-rate schedule; clipping by global norm.
- :mod:`.data` — reading a corpus (plain or gzipped UTF-8), tokenizing it with the model's
  vocabulary, random training windows and fixed evaluation windows.
- :mod:`.trainer` — the training loop as a generator of progress events, with periodic
  evaluation, a loss history and checkpoints that resume a run exactly.

Like the rest of ``core``, nothing here imports Textual or Rich.
"""
