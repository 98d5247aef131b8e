"""PAP-REC Workbench core library.

Personalized automatic prompts for P5-style recommendation language models (Li et al., 2024,
arXiv 2402.00284). Layers, each importing only from those before it: ``data`` (loaders, splits, item
index), ``prompts`` (templates, prompt parts, slot layout), ``evaluation`` (metrics, bootstrap, one
evaluator for every system; knows no model), ``rlm`` (tokenizer, model, checkpoints, ranking, training),
``search`` (HotFlip, surrogates, the engine, traces, runs), ``scoring`` (a prompt spec scored with an
RLM), then ``experiments``, ``findings``, ``comparison``, ``viz``, ``exports`` and the ``cli``. Importing
this package does no work.
"""

__version__ = "0.1.0"


class PapRecError(Exception):
    """Base class of every error this library raises on bad input; the CLI prints it without a traceback."""
