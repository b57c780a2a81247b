"""trainbox's plugin sandbox, compiled from the trainbox-sandbox crate."""

from typing import Callable

class Plugins:
    """Sandboxed trainbox plugins loaded for one run; they receive HF's events in order."""

    def __init__(
        self,
        paths: list[str],
        args_json: str,
        config_json: str = "{}",
        grants_json: str = "{}",
        on_error: str = "restart",
        memory_mb: int | None = None,
        deadline_ms: int | None = None,
        report_to: list[str] = [],
        builtin_dir: str | None = None,
    ) -> None:
        """Loads the ``report_to`` integrations (from ``builtin_dir``, by default the built-in
        folder ``trainbox train`` uses), then plugin files and folders, for the run of HF's
        ``to_dict()`` arguments (as JSON)."""
    def names(self) -> list[str]:
        """The plugins' labels, in dispatch order."""
    def stateful(self) -> bool:
        """Whether any plugin keeps state in checkpoints."""
    def event(self, event: str, state: object, control: object, payload: dict[str, object] | None = None) -> None:
        """Delivers one of HF's events and writes the merged flags into ``control``."""
    def hooks(self) -> list[tuple[str, Callable[..., object]]]:
        """HF's frequent events (``on_step_end``, ``on_log``, ...) as functions bound to these
        plugins, by HF's method name, taking a callback method's arguments and returning
        ``control``: set as a callback's attributes, an event costs no Python frame."""
    def set_view(
        self,
        parameters: object | None = None,
        optimizer: object | None = None,
        train_batches: int | None = None,
        eval_batches: int | None = None,
        grad_norm: object | None = None,
    ) -> None:
        """Sets what the plugins' views read: parameter statistics, learning rates, dataloader
        lengths, the gradient norm (an object whose ``value()`` is a float or None)."""
    def save_states(self) -> str:
        """The stateful plugins' states as JSON, ``{name: state}`` as trainer_state.json holds them."""
    def load_states(self, states_json: str) -> None:
        """Restores states made by ``save_states``."""
    def finish(self, error: str | None = None) -> None:
        """Tells every plugin that the run is over (``error``: why it failed)."""
    @property
    def in_training(self) -> bool:
        """Whether HF began a training run these plugins heard and has not ended it."""
    def abandon(self) -> None:
        """Finishes the plugins: aborted if HF began training and never ended it, else completed."""
    def reports(self) -> list[dict[str, object]]:
        """Per plugin: label, calls, time_s, faults, restarts, disabled, slow."""
    def report_table(self) -> list[str]:
        """The end-of-run table of calls, time and faults, as ``trainbox train`` prints it."""

def describe(path: str) -> str:
    """What a plugin file says of itself, as ``trainbox plugins inspect`` prints it."""
