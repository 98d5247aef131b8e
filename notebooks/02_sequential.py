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
# # 02 — Sequential recommendation: baselines, manual prompts, PAP-REC
#
# Test HR@5, NDCG@5, HR@10, NDCG@10 with bootstrap 95% CIs on the same users, and paired-bootstrap
# p-values against the manual prompt 2-3. PAP-REC rows: 5 shared tokens, then + 1/2/3 personalised
# tokens (the budget decides which), each searched on validation with the exact surrogate.

# %% tags=["parameters"]
model_dir = None  # None: the embedded ml-100k RLM
dataset = None
budget = "smoke"  # smoke | full
seed = 0
results_dir = "results/ml-100k"

# %%
from pap_rec_core import viz
from pap_rec_core.experiments import Experiment, published_reference

exp = Experiment(model_dir=model_dir, results_dir=results_dir, budget=budget, seed=seed, dataset=dataset)
exp.describe()

# %% [markdown]
# ## RLM prompts: manual vs automatic vs personalised

# %%
prompts = exp.prompt_results("sequential")
prompt_table = exp.results_table(prompts, reference="manual 2-3")
exp.save_table("sequential_prompts", prompt_table)
prompt_table

# %% [markdown]
# ## Baselines (RecBole models trained on our split, scored by our evaluator)
# Rows that name an epoch count and a stop reason were stopped by the budget, not by early stopping:
# they are lower bounds.

# %%
baselines = exp.baseline_results("sequential")
sequential = exp.results_table({**baselines, **prompts}, reference="manual 2-3")
exp.save_table("sequential", sequential)
sequential

# %%
fig = viz.metric_bars(exp.long_table({**baselines, **prompts}), title="Sequential recommendation, test (95% CI)")
exp.save_figure("sequential_metrics", fig)
fig

# %% [markdown]
# ## The paper's claims, answered (the findings report)
# The same computation as `benchmarks/search_findings.py` (at the `full` budget, the settings of the committed
# `benchmarks/results/findings_<dataset>.md`): every search arm over its seeds, paired bootstrap 95% CIs, and
# each claim's answer from its row.

# %%
from pap_rec_core.findings_report import claims_frame, rows_frame

findings = exp.findings()
claims = claims_frame(findings)
exp.save_table("findings_claims", claims)
exp.save_table("findings_rows", rows_frame(findings))
claims

# %% [markdown]
# ## Published numbers (reference only — not comparable)
# The paper's and P5's numbers are on Amazon Beauty/Sports/Toys with P5's (leaky) sequential index, a
# pretrained T5 and beam-search ranking; ours are on this dataset with a random index and a small RLM
# trained here. The table below is empty unless `notebooks/reference/published.csv` holds numbers you
# copied from the papers (we could not verify them offline, so none are bundled).

# %%
published_reference("sequential")
