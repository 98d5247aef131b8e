"""The names of the systems that tables, plots, reports and the app show: one scheme everywhere.

- a manual prompt: ``manual 2-3``, ``manual 2-13 (unseen)``, ``manual 5-7, direct task``;
- a searched prompt: ``PAP-REC 5 shared``, ``PAP-REC 5 shared + 1 personal``, qualified as needed by its
  personal rule, its task, its seed or the number of seeds it is the mean of:
  ``PAP-REC 5 shared + 1 personal (likelihood-tiebreak), direct task, mean of 3 seeds``;
- a baseline: its model's name (``Pop``, ``SASRec``, the Markov chain's own name).
"""

from __future__ import annotations

DIRECT_TASK = "direct"


def manual_label(template_id: str, *, unseen: bool = False, task: str = "sequential") -> str:
    """``manual <id>``; ``(unseen)`` for a template the RLM was not trained on; the task when not sequential."""
    text = f"manual {template_id}" + (" (unseen)" if unseen else "")
    return text if str(task) == "sequential" else f"{text}, {task} task"


def pap_rec_label(n_shared: int, n_personal: int = 0, *, rule: str | None = None, holdout: int = 0,
                  task: str = "sequential", seed: int | None = None, seeds: int | None = None) -> str:
    """A searched prompt: its shared and personal slots, then (when given) the personal rule and holdout,
    the task when not sequential, and a seed or the number of seeds averaged."""
    text = f"PAP-REC {n_shared} shared" + (f" + {n_personal} personal" if n_personal else "")
    if rule is not None or holdout:
        text += f" ({rule or 'strict'}" + (f", holdout {holdout}" if holdout else "") + ")"
    if str(task) != "sequential":
        text += f", {task} task"
    if seed is not None:
        text += f", seed {seed}"
    elif seeds is not None:
        text += f", mean of {seeds} seeds"
    return text
