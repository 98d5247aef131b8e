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
# # 01 — Data and the recommendation language model
#
# Dataset statistics (the analogue of P5's Table 1), the item-index leak (P5's sequential numbering vs
# a random index), the RLM's training curve and its test metrics with the manual prompts (seen 2-3,
# unseen 2-13). Every cell is one call into `pap_rec_core`; `pap-rec reproduce` runs this notebook with
# papermill.

# %% tags=["parameters"]
model_dir = None  # None: the embedded ml-100k RLM (models/ml-100k)
dataset = None  # another location of the model's dataset (moved files); None: as the model records it
budget = "smoke"  # smoke | full
seed = 0
results_dir = "results/ml-100k"

# %%
from pap_rec_core import viz
from pap_rec_core.experiments import Experiment

exp = Experiment(model_dir=model_dir, results_dir=results_dir, budget=budget, seed=seed, dataset=dataset)
exp.describe()

# %% [markdown]
# ## Dataset statistics

# %%
stats = exp.dataset_table()
exp.save_table("dataset_stats", stats)
stats

# %% [markdown]
# ## The item-index leak
# Under P5's sequential numbering, items get consecutive ids along user sequences, so the test item is
# often "the largest id in the history + 1". The share of users where that holds is the leak a model
# can exploit; a seeded random index removes it. (`benchmarks/index_leak.py` trains two RLMs to
# measure what the leak is worth: `benchmarks/results/index_leak_ml-100k.md`.)

# %%
leak = exp.leak_table()
exp.save_table("index_leak", leak)
leak

# %% [markdown]
# ## Training curve of the RLM

# %%
curve = exp.training_curve()
exp.save_table("training_curve", curve)
exp.save_figure("training_curve", viz.training_curve(curve))
viz.training_curve(curve)

# %% [markdown]
# ## Manual prompts on test (seen 2-3, unseen 2-13)

# %%
manual = {"manual 2-3": exp.evaluate("manual:2-3", label="manual 2-3"),
          "manual 2-13 (unseen)": exp.evaluate("manual:2-13", label="manual 2-13 (unseen)"),
          "key info only": exp.evaluate("keyinfo", label="key info only"),
          "random words (seed 0)": exp.evaluate("random:0", label="random words (seed 0)")}
manual_table = exp.results_table(manual, reference="manual 2-3")
exp.save_table("manual_prompts", manual_table)
manual_table
