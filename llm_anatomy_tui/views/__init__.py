"""View-models: pure Python that turns core results into what a screen shows.

No Textual, no Rich (a fresh-interpreter test checks it). Each module serves one or two
chapters and is tested on its own.
"""
