"""The shared session: the user's prompt plus the loaded tokenizers and model.

Pure state, no Textual: the app owns one :class:`Session` (``app.session``), loads its
resources in a background thread, and tells screens when something changed. Everything
here is also usable from a script or a test::

    >>> s = Session(prompt="Hi", model_dir="/nonexistent")
    >>> s.set_prompt("Hello")
    True
    >>> s.prompt, s.prompt_revision
    ('Hello', 1)

Resources load in two independent steps, each safe to call from a worker thread:
:meth:`Session.load_tokenizers` and :meth:`Session.load_model`. Until a step finishes its
status is ``LOADING``; afterwards ``READY``, ``MISSING`` (the model is not installed) or
``FAILED`` with a one-line message that the UI can show as is.
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from .tokenizers import ENCODING_NAMES, TokenizerAssetError, load_encoding

if TYPE_CHECKING:  # numpy is imported only when the model is actually loaded
    import tiktoken

    from .generation import Generation
    from .model import Model
    from .sampling import SamplingSettings

T = TypeVar("T")

DEFAULT_PROMPT = "Once upon a time, there was a little robot who wanted to read."
"""The prompt a fresh session starts with (the default model was trained on short stories)."""

MODEL_DIR_ENV = "LLM_ANATOMY_MODEL"
"""Environment variable naming a model (a directory or a .gguf file) to load instead of
the shipped default."""


class Status(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    MISSING = "missing"
    FAILED = "failed"


class NotReady(RuntimeError):
    """A resource was asked for before it loaded, or it could not be loaded.

    ``str(exc)`` is a one-line message fit to show a person.
    """


@dataclass(frozen=True)
class ResourceState:
    status: Status
    message: str = ""

    @property
    def ready(self) -> bool:
        return self.status is Status.READY


@dataclass(frozen=True)
class ContextFit:
    """How the prompt's tokens fit the model's context window (see
    :meth:`Session.context_ids`)."""

    n_tokens: int
    """Tokens in the prompt (without a start-of-text token)."""
    window: int
    """Positions in the model's context window."""
    kept: int
    """Prompt tokens the model reads: the last ``kept`` of them."""
    start_token: bool
    """The model reads a start-of-text (BOS) token first."""

    @property
    def empty(self) -> bool:
        return self.n_tokens == 0

    @property
    def dropped(self) -> int:
        """The oldest prompt tokens that fell out of the window."""
        return self.n_tokens - self.kept


class Session:
    """The prompt and the shared resources. Create one per app (or per test).

    Attributes are read freely from the UI thread; the ``load_*`` methods run in a worker
    thread and publish their results with single assignments, so a reader sees either the
    old state or the new one, never half of it.
    """

    def __init__(
        self,
        prompt: str = DEFAULT_PROMPT,
        *,
        model_dir: str | os.PathLike[str] | None = None,
        encoding_names: tuple[str, ...] = ENCODING_NAMES,
    ) -> None:
        self._prompt = prompt
        self.prompt_revision = 0
        """Increases by one whenever the prompt text changes."""
        self.encoding_names = encoding_names
        self._encodings: Mapping[str, tiktoken.Encoding] = {}
        self._encoding_errors: Mapping[str, str] = {}
        self.tokenizer_state = ResourceState(Status.LOADING, "Loading tokenizers…")
        if model_dir is None:
            model_dir = os.environ.get(MODEL_DIR_ENV) or None
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self.model: Model | None = None
        """The loaded model, or ``None`` (see :attr:`model_state` for why)."""
        self.model_state = ResourceState(Status.LOADING, "Loading the model…")
        self.weights_note = ""
        """Empty while :attr:`model` holds the weights as loaded; otherwise one short line
        saying that a copy trained in the app replaced them (every chapter header shows it).
        Set only by :meth:`adopt_trained` and cleared by :meth:`restore_loaded`."""
        self._loaded_model: Model | None = None
        self._adoptions = 0
        self._model_loading = False
        self._lock = threading.Lock()
        # -- the shared generation (see "the generation" below) --
        self.generation_lock = threading.RLock()
        """Held while a generation op runs; read :attr:`current_generation` without it."""
        self.generation_revision = 0
        """Increases by one whenever the shared generation changed (a step, a rewind …)."""
        self._sampling: SamplingSettings | None = None
        self.seed = 0
        """Seed of the shared generation's draws (step t draws from its own generator)."""
        self.stop_sequences: tuple[str, ...] = ()
        """Texts that end the shared generation when they appear in its output."""
        self.settings_revision = 0
        """Increases by one whenever the sampler settings, seed or stop sequences change."""
        self._generation: Generation | None = None
        self._generation_key: tuple[str, int] | None = None
        self._shared: dict[str, object] = {}
        self._shared_lock = threading.Lock()
        self.context_fit: ContextFit | None = None
        """How the shared generation's prompt fit the context window (None before the
        first generation). ``views.context.context_notice`` words it for a screen."""

    # -- the prompt ------------------------------------------------------------------------

    @property
    def prompt(self) -> str:
        """The user's text, exactly as typed (may be empty, may be megabytes long)."""
        return self._prompt

    def set_prompt(self, text: str) -> bool:
        """Replace the prompt. Returns True if it changed (and bumps the revision)."""
        if text == self._prompt:
            return False
        self._prompt = text
        self.prompt_revision += 1
        return True

    # -- tokenizers ------------------------------------------------------------------------

    def load_tokenizers(self) -> ResourceState:
        """Load every encoding in :attr:`encoding_names` (blocking; ~0.5 s). Thread-safe.

        One broken rank file does not take the others down: each failure is recorded and
        reported by :meth:`encoding` and in :attr:`tokenizer_state`'s message.
        """
        with self._lock:
            encodings: dict[str, tiktoken.Encoding] = {}
            errors: dict[str, str] = {}
            for name in self.encoding_names:
                try:
                    encodings[name] = load_encoding(name)
                except TokenizerAssetError as exc:
                    errors[name] = str(exc)
            self._encodings = encodings
            self._encoding_errors = errors
            from .tokenizers import release_rank_tables

            release_rank_tables()  # ~40 MB the built encodings no longer need
            if not errors:
                state = ResourceState(Status.READY)
            else:
                first = next(iter(errors.values()))
                state = ResourceState(Status.FAILED, first)
            self.tokenizer_state = state
            return state

    @property
    def encodings(self) -> Mapping[str, tiktoken.Encoding]:
        """The encodings loaded so far, by name (empty while loading)."""
        return self._encodings

    def encoding(self, name: str = "model") -> tiktoken.Encoding:
        """The named encoding, or :class:`NotReady` with a message saying why not.

        ``"model"`` is the loaded model's own tokenizer when it has one (a
        :class:`~.model_tokenizer.ModelTokenizer`: the same methods as a tiktoken
        encoding), else the built-in anatomy-mini vocabulary.
        """
        if name == "model":
            own = getattr(self.model, "tokenizer", None)
            if own is not None:
                return own
            if self._model_loading and self._model_dir is not None:
                raise NotReady("Loading the model and its tokenizer…")
        enc = self._encodings.get(name)
        if enc is not None:
            return enc
        if name in self._encoding_errors:
            raise NotReady(self._encoding_errors[name])
        if name not in self.encoding_names:
            raise NotReady(f"unknown encoding {name!r}")
        raise NotReady(self.tokenizer_state.message or "Loading tokenizers…")

    def encoding_label(self, name: str) -> str:
        """How to call an encoding on screen: ``"model"`` names the loaded model's own
        tokenizer and its size (e.g. ``"SmolLM2-135M-Instruct (49k)"``)."""
        from .tokenizers import ENCODING_LABELS

        own = getattr(self.model, "tokenizer", None) if name == "model" else None
        if own is not None:
            n = own.n_vocab
            size = f"{n / 1000:.0f}k" if n >= 10_000 else f"{n:,}"
            return f"{self.model.name} ({size})"
        return ENCODING_LABELS.get(name, name)

    def encoding_error(self, name: str) -> str | None:
        """The load error for one encoding, if it failed."""
        return self._encoding_errors.get(name)

    def prompt_ids(self, name: str = "model") -> list[int]:
        """The prompt encoded (as ordinary text) by the named encoding. Raises NotReady."""
        return self.encoding(name).encode_ordinary(self._prompt)

    # -- the model -------------------------------------------------------------------------

    @property
    def model_dir(self) -> Path:
        """Where the model is read from: ``$LLM_ANATOMY_MODEL`` or the shipped default."""
        if self._model_dir is not None:
            return self._model_dir
        from .model import default_model_dir

        return default_model_dir()

    def load_model(self) -> ResourceState:
        """Load the model from :attr:`model_dir` (blocking). Thread-safe.

        A missing default model is not an error: it may not be installed yet. Any model
        goes through :func:`~.formats.open_model`: the memory estimate first, then the
        weights and the model's own tokenizer.
        """
        self._model_loading = True
        try:
            return self._load_model()
        finally:
            self._model_loading = False

    def _load_model(self) -> ResourceState:
        from .formats import open_model
        from .model import ModelLoadError

        path = self.model_dir
        if not path.exists():
            self.model = None
            self.model_state = ResourceState(
                Status.MISSING,
                f"No model found in {path}. The chapters that run the model need "
                "one: reinstall llm-anatomy (it ships anatomy-mini), or point "
                "LLM_ANATOMY_MODEL at a model directory.",
            )
            return self.model_state
        from .integrity import FIX_MODEL, is_shipped_model_dir, problems

        shipped = is_shipped_model_dir(path)
        if shipped:  # the shipped files must be the shipped files (sha256 manifest)
            found = problems("models/")
            if found:
                self.model = None
                self.model_state = ResourceState(Status.FAILED, found[0])
                return self.model_state
        try:
            model = open_model(path)
        except (ModelLoadError, OSError, ValueError) as exc:
            self.model = None
            fix = (
                FIX_MODEL
                if shipped
                else (
                    f"check the files in {path}, or unset {MODEL_DIR_ENV} to use the shipped model"
                )
            )
            self.model_state = ResourceState(
                Status.FAILED, f"Could not load the model: {exc}. To fix: {fix}."
            )
            return self.model_state
        self.model = model
        self.model_state = ResourceState(Status.READY)
        return self.model_state

    def adopt_trained(self, model: Model, note: str) -> None:
        """Use ``model`` (a copy trained in the app, e.g. by chapter 12) as the session's
        model from now on, in every chapter, until :meth:`restore_loaded`.

        The loaded weights are kept aside, untouched. ``model_state`` gets a new READY
        state carrying the note, so every screen sees a model change when it is shown.
        """
        if self._loaded_model is None:
            self._loaded_model = self.model
        self._adoptions += 1
        self.model = model
        self.weights_note = note
        self.model_state = ResourceState(Status.READY, f"{note} (#{self._adoptions})")

    def restore_loaded(self) -> bool:
        """Go back to the weights as loaded; False when no trained copy was in use."""
        if self._loaded_model is None:
            return False
        self.model = self._loaded_model
        self._loaded_model = None
        self.weights_note = ""
        self.model_state = ResourceState(Status.READY)
        return True

    @property
    def loaded_model(self) -> Model | None:
        """The weights as loaded from disk (the same as :attr:`model` unless a trained
        copy was adopted)."""
        return self._loaded_model if self._loaded_model is not None else self.model

    def open_model(
        self, path: str | os.PathLike[str], progress: Callable[[float], None] | None = None
    ) -> ResourceState:
        """Replace the model by the one at ``path`` (blocking; call it from a worker, which
        ``progress(fraction)`` is called from as the weights load).

        On success the session reads from ``path`` from now on and the shared generation
        starts again. On failure nothing changes — the current model, its state and the
        prompt stay — and the returned state is FAILED with a one-line message.
        """
        from .formats import open_model
        from .model import ModelLoadError

        try:
            model = open_model(Path(path), progress)
        except (ModelLoadError, OSError, ValueError, MemoryError) as exc:
            return ResourceState(Status.FAILED, f"Could not open {path}: {exc}")
        self._model_dir = Path(path)
        self.model = model
        self._loaded_model, self.weights_note = None, ""  # a trained copy is dropped too
        self.model_state = ResourceState(Status.READY)
        self.reset_generation()
        return self.model_state

    def require_model(self) -> Model:
        """The loaded model, or :class:`NotReady` with a message fit to show a person."""
        if self.model is not None:
            return self.model
        raise NotReady(self.model_state.message or "Loading the model…")

    # -- the generation ----------------------------------------------------------------------
    #
    # One Generation (prompt + the tokens generated after it) is shared by every chapter
    # that steps the model: a step taken in one chapter is the step the others show. It is
    # rebuilt, empty, whenever the prompt or the model changes. It is only ever touched
    # inside a *generation op* — a function run by the app's single generation worker
    # while holding :attr:`generation_lock` — so steps never race; screens read
    # :attr:`current_generation` (immutable step records) from the UI thread.

    # Settings are plain values: setting one never waits for the generation lock (an op
    # may be running); ``generation()`` copies them onto the generation when the next op
    # starts, so they apply from the next step on and recorded steps keep theirs.

    @property
    def sampling(self) -> SamplingSettings:
        """The sampler settings the shared generation uses from its next step on."""
        if self._sampling is None:
            from .sampling import SamplingSettings

            self._sampling = SamplingSettings()
        return self._sampling

    def set_sampling(self, settings: SamplingSettings) -> None:
        """Use these sampler settings from the next step on (recorded steps keep theirs)."""
        if settings != self._sampling:
            self._sampling = settings
            self.settings_revision += 1

    def set_seed(self, seed: int) -> None:
        """Use this seed for draws from the next step on (replay re-draws every step)."""
        if int(seed) != self.seed:
            self.seed = int(seed)
            self.settings_revision += 1

    def set_stop_sequences(self, stops: tuple[str, ...]) -> None:
        """End generation when the output contains any of these texts (from the next step)."""
        stops = tuple(stops)
        if stops != self.stop_sequences:
            self.stop_sequences = stops
            self.settings_revision += 1

    def _generation_state(self) -> tuple[str, int]:
        return (self._prompt, id(self.model))

    @property
    def current_generation(self) -> Generation | None:
        """The shared generation if it was built for the current prompt and model, else
        None. Safe to read from the UI thread: its steps are immutable records."""
        if self._generation is not None and self._generation_key == self._generation_state():
            return self._generation
        return None

    def context_ids(self, encoding: tiktoken.Encoding, window: int) -> tuple[list[int], ContextFit]:
        """The token IDs the model reads for the prompt, and how the prompt fit.

        Policy, for a model with a context window of ``window`` positions:

        - a model whose tokenizer adds a BOS token reads it first, as it did in training;
        - an empty prompt becomes ``[<|endoftext|>]`` — the token that separated stories in
          the training text, so the model starts a fresh story (or ``[BOS]`` alone, for a
          model that starts every text with one);
        - a prompt of ``window`` tokens or more keeps only its last ``window - 1`` (the
          oldest tokens fall out of the window, as in a chat), leaving room for one new
          token.

        >>> from .tokenizers import load_encoding
        >>> ids, fit = Session("").context_ids(load_encoding("model"), 256)
        >>> ids, fit.empty, fit.start_token
        ([8192], True, False)
        >>> ids, fit = Session(" ".join(["word"] * 300)).context_ids(load_encoding("model"), 256)
        >>> len(ids), fit.n_tokens, fit.kept, fit.dropped
        (255, 300, 255, 45)
        """
        prefix = encoding.prefix() if hasattr(encoding, "prefix") else []
        ids = encoding.encode_ordinary(self._prompt)
        if not ids:
            start = prefix or [encoding.eot_token]
            return start, ContextFit(0, window, 0, bool(prefix))
        keep = min(len(ids), window - 1 - len(prefix))
        return prefix + ids[len(ids) - keep :], ContextFit(len(ids), window, keep, bool(prefix))

    def generation(self) -> Generation:
        """The shared generation for the current prompt and model, built (empty) if needed.

        Call it only inside a generation op (holding :attr:`generation_lock`). Raises
        :class:`NotReady` while the model or the tokenizer is not available.
        """
        current = self.current_generation
        if current is not None:
            self.apply_settings(current)
            return current
        from .generation import Generation

        model = self.require_model()
        encoding = self.encoding("model")
        ids, fit = self.context_ids(encoding, model.config.max_position_embeddings)
        generation = Generation(
            model,
            ids,
            settings=self.sampling,
            seed=self.seed,
            encoding=encoding,
            stop_sequences=self.stop_sequences,
        )
        self._generation, self._generation_key = generation, self._generation_state()
        self.context_fit = fit
        return generation

    def apply_settings(self, generation: Generation) -> None:
        """Copy the session's sampler settings, seed and stop sequences onto
        ``generation`` (inside a generation op; ``generation()`` does it at each op's start)."""
        from .sampling import check_stops

        generation.settings = self.sampling
        generation.seed = self.seed
        generation.stop_sequences = check_stops(self.stop_sequences)

    def shared(self, name: str, factory: Callable[[], T]) -> T:
        """One object per session under ``name``, made by ``factory()`` the first time it is
        asked for (thread-safe). For caches that several screens read, such as the attention
        maps chapters 8 and 9 share: a step computed for one is there for the other. The
        session knows nothing of what it holds.

        >>> s = Session("Hi", model_dir="/nonexistent")
        >>> s.shared("memo", dict) is s.shared("memo", dict)
        True
        """
        with self._shared_lock:
            if name not in self._shared:
                self._shared[name] = factory()
            return cast(T, self._shared[name])

    def reset_generation(self) -> None:
        """Forget every step: the next op starts again from the prompt."""
        with self.generation_lock:
            self._generation = None
            self._generation_key = None
            self.generation_revision += 1
