"""trainbox's sandboxed training callbacks, for Python.

``trainbox.hf.PluginCallback`` loads trainbox plugins (``.wasm`` components,
written in any language) into Hugging Face's ``transformers.Trainer``, under
the same sandbox, grants, limits and fault policy as the ``trainbox`` binary:
the plugin code that runs is the same Rust crate, ``trainbox-sandbox``.
``trainbox.describe`` says what a plugin file is, as ``trainbox plugins
inspect`` does.
"""

from trainbox._native import describe

__all__ = ["describe"]
