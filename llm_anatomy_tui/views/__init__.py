"""View-models: pure Python that turns core results into what a chapter shows.

Everything here is plain data and text (numbers rounded for display, labels, the parsing
of what a person typed) — never Textual or Rich, so it is testable without a screen and
loads in a fresh interpreter without the UI (``tests/core/test_import_hygiene.py``).
Layering: ``core`` ← ``views`` ← ``widgets`` ← ``chapters`` ← ``app``/``cli``.
"""
