"""The session's trained-copy flag: adopting a copy changes the model and its state (so
every screen sees a model change), keeps the loaded weights aside, and restores them."""

from __future__ import annotations

from llm_anatomy_tui.core.model import init_random
from llm_anatomy_tui.core.session import ResourceState, Session, Status


def test_adopt_and_restore(tiny_model, tiny_config):
    session = Session("hi", model_dir="/nonexistent")
    session.model, session.model_state = tiny_model, ResourceState(Status.READY)
    assert session.weights_note == "" and session.loaded_model is tiny_model
    assert not session.restore_loaded()
    copy = init_random(tiny_config, seed=9)
    session.adopt_trained(copy, "trained 10 steps")
    assert session.model is copy and session.loaded_model is tiny_model
    assert session.weights_note == "trained 10 steps"
    first = session.model_state
    assert first.ready and first != ResourceState(Status.READY)
    second = init_random(tiny_config, seed=10)
    session.adopt_trained(second, "trained 10 steps")  # same note: still a new state
    assert session.model_state != first and session.loaded_model is tiny_model
    assert session.restore_loaded()
    assert session.model is tiny_model and session.weights_note == ""
    assert session.model_state == ResourceState(Status.READY)


def test_opening_another_model_drops_the_trained_copy_flag(tiny_model, tiny_config):
    from llm_anatomy_tui.core.model import default_model_dir

    session = Session("hi", model_dir="/nonexistent")
    session.model, session.model_state = tiny_model, ResourceState(Status.READY)
    session.adopt_trained(init_random(tiny_config, seed=9), "trained 10 steps")
    assert session.open_model(default_model_dir()).ready
    assert session.weights_note == "" and not session.restore_loaded()
    assert session.loaded_model is session.model
