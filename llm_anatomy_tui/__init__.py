"""llm-anatomy: open up a real, small, trained language model in the terminal."""

__version__ = "0.1.0"
