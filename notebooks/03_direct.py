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
# # 03 — Direct recommendation (template family 5: 1 positive + 99 fixed negatives)
#
# The RLM scores each user's fixed candidate list; manual 5-7 (seen) and 5-8 (unseen) vs PAP-REC's
# searched prompts; popularity over the same candidates as the baseline.

# %% tags=["parameters"]
model_dir = None
dataset = None
budget = "smoke"  # smoke | full
seed = 0
results_dir = "results/ml-100k"

# %%
from pap_rec_core import viz
from pap_rec_core.experiments import Experiment, published_reference

exp = Experiment(model_dir=model_dir, results_dir=results_dir, budget=budget, seed=seed, dataset=dataset)
exp.describe()

# %%
prompts = exp.prompt_results("direct")
baselines = exp.baseline_results("direct")
direct = exp.results_table({**baselines, **prompts}, reference="manual 5-7")
exp.save_table("direct", direct)
direct

# %%
fig = viz.metric_bars(exp.long_table({**baselines, **prompts}), title="Direct recommendation, test (95% CI)")
exp.save_figure("direct_metrics", fig)
fig

# %%
published_reference("direct")
