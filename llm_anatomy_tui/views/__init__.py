"""View-models: pure Python that turns core results into what a screen shows (no Textual,
no Rich)."""
