"""PAP-REC Workbench core library.

Personalized automatic prompts for P5-style recommendation language models (Li et al., 2024,
arXiv 2402.00284). Subpackages: ``data`` (loaders, splits, item index), ``evaluation`` (metrics, one
evaluator for every system). Importing this package does no work.
"""

__version__ = "0.1.0"


class PapRecError(Exception):
    """Base class of every error this library raises on bad input; the CLI prints it without a traceback."""
