# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 — Explanation generation (BLEU-4, ROUGE-1/2/L), manual and PAP-REC prompts
#
# Needs review text (P5's `review_splits.pkl` / `exp_splits.pkl`, loaded with `trust_pickle`). On a
# dataset without it this notebook says so and stops here without failing. With it: the manual
# explanation templates, then PAP-REC searched on the explanation task (surrogate BLEU-4 + 0.1·ROUGE-L
# on the val reviews) and compared on the test reviews of the searched users.

# %% tags=["parameters"]
model_dir = None
dataset = None
budget = "smoke"  # smoke | full
seed = 0
results_dir = "results/ml-100k"

# %%
from pap_rec_core.experiments import Experiment

exp = Experiment(model_dir=model_dir, results_dir=results_dir, budget=budget, seed=seed, dataset=dataset)
status = exp.explanation_status()
exp.save_table("explanation_status", status)
status

# %%
if bool(status["has_reviews"].iloc[0]):
    explanation = exp.explanation_table()
    exp.save_table("explanation", explanation)
    display(explanation)  # noqa: F821 (IPython)
    searched = exp.explanation_search_table()
    exp.save_table("explanation_search", searched)
    display(searched)  # noqa: F821 (IPython)
else:
    print(f"{exp.split.data.name} has no review text: explanation generation is skipped.")
