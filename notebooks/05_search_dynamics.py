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
# # 05 — Search dynamics
#
# Convergence per decision, token evolution for a few users, how well each surrogate on validation
# ranks candidate prompts by their test NDCG@10, the prompt-length ablation (shared 1/3/5/10), and the
# time per round. Runs are the same (resumed) searches as notebook 02 where the configuration matches.

# %% tags=["parameters"]
model_dir = None
dataset = None
budget = "smoke"  # smoke | full
seed = 0
results_dir = "results/ml-100k"

# %%
from pap_rec_core import viz
from pap_rec_core.experiments import Experiment
from pap_rec_core.search.timeline import Timeline

exp = Experiment(model_dir=model_dir, results_dir=results_dir, budget=budget, seed=seed, dataset=dataset)
shared_run = exp.search("sequential", n_personal=0)
personal_run = exp.search("sequential", n_personal=max(exp.budget.personal_counts))

# %% [markdown]
# ## Convergence per decision

# %%
steps = exp.convergence(personal_run)
exp.save_table("convergence", steps)
timeline = Timeline.from_trace(personal_run.run_dir)
fig = viz.surrogate_curve(timeline)
exp.save_figure("convergence", fig)
fig

# %% [markdown]
# ## Token evolution for a few users

# %%
for user in timeline.users[:3]:
    fig = viz.token_grid(timeline, user=user, token_text=exp.bundle.tokenizer.token_text,
                         user_label=str(exp.split.data.user_ids[user]))
    exp.save_figure(f"token_grid_user_{exp.split.data.user_ids[user]}", fig)
fig

# %% [markdown]
# ## What the personal tokens did
#
# The users whose test rank of the held-out item the personal tokens improved and worsened most, against
# the shared tokens alone: their tokens, both ranks, how much of the top-10 they changed, and the test
# item's genres next to the history's most frequent ones.

# %%
from pap_rec_core.comparison import compare_run, personal_token_effects

effects = personal_token_effects(compare_run(exp.bundle, exp.split, personal_run), exp.bundle, exp.split,
                                 personal_run, n=3)
exp.save_table("personal_token_effects", effects)
fig = viz.personal_token_effects(effects)
exp.save_figure("personal_token_effects", fig)
effects

# %% [markdown]
# ## Surrogate on validation vs the true test metric

# %%
candidates, correlation = exp.surrogate_correlation(shared_run)
exp.save_table("surrogate_candidates", candidates)
exp.save_table("surrogate_correlation", correlation)
correlation

# %% [markdown]
# The findings report's judges: the same correlation over the candidates of all its seeds' shared-only searches
# (pooled), with judges that also read each user's last N training items (`+hN`).

# %%
from pap_rec_core.findings_report import judges_frame

judges = judges_frame(exp.findings())
exp.save_table("findings_judges", judges)
judges

# %% [markdown]
# ## Prompt length (shared tokens)

# %%
ablation = exp.length_ablation("sequential")
exp.save_table("length_ablation", ablation)
ablation

# %% [markdown]
# ## Time per round

# %%
fig = viz.round_times(timeline)
exp.save_figure("round_times", fig)
fig
