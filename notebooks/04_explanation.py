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
# # 04 — Explanation generation (BLEU-4, ROUGE-1/2/L)
#
# Needs review text (P5's `review_splits.pkl` / `exp_splits.pkl`). On a dataset without it this
# notebook says so and stops here without failing.

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
else:
    print(f"{exp.split.data.name} has no review text: explanation generation is skipped.")
