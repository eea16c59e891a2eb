"""
=============================================
Few-shot sine regression, adapting over steps
=============================================

The regression benchmark of MAML (Finn et al., 2017): every task is a sine
wave ``y = A sin(x - phase)`` with a random amplitude and phase, and a model
must follow a *new* wave from 5 or 10 points. :class:`~skmeta.FewShotRegressor`
meta-trains over many waves, given the scikit-learn way as ``groups``; with
``pretrained=`` its ``fit`` adapts to one new wave by ``inner_steps`` gradient
steps from the meta-learnt starting point.
"""

# %%
# Meta-train over sine waves
# --------------------------
# :func:`~skmeta.datasets.make_sinusoid_tasks` returns rows, targets and the
# task of each row. Meta-SGD (MAML with learnt per-weight inner learning rates)
# on the benchmark's MLP (two hidden layers of 40 units), with far fewer
# meta-updates than the benchmark (4,500 of 25 tasks each): the fit is rougher
# than the benchmark's errors (``benchmarks/results/sinusoid.md``).
import matplotlib.pyplot as plt
import numpy as np

from skmeta import FewShotRegressor
from skmeta.datasets import make_sinusoid_tasks

X, y, groups = make_sinusoid_tasks(n_tasks=2000, n_samples_per_task=15, random_state=0)
meta = FewShotRegressor(
    method="metasgd",
    backbone_params={"hidden_sizes": (40, 40), "out_features": 40},
    k_shot=5,
    n_query=10,
    inner_lr=0.01,
    inner_steps=1,
    meta_batch_size=10,
    max_iter=400,
    random_state=0,
).fit(X, y, groups=groups)
print(meta.meta_model_)
model = meta.meta_model_

# %%
# Adapt to a new wave from 5 points
# ---------------------------------
# ``inner_steps`` is a setting of the adaptation, so the same model can take
# more steps at test time than it was meta-trained with. Meta-SGD learnt its
# per-weight step sizes for the *one* step of meta-training, so a few more
# steps help at first and then overshoot -- as in the benchmark, where more
# steps diverged at 5 shots and test-time steps are therefore chosen on
# validation waves.
X_wave, y_wave, _, amplitude, phase = make_sinusoid_tasks(
    n_tasks=1, n_samples_per_task=5, random_state=1, return_params=True
)
grid = np.linspace(-5, 5, 200)[:, None]
truth = amplitude[0] * np.sin(grid[:, 0] - phase[0])

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(grid, truth, color="black", lw=2, label="true wave")
ax.scatter(X_wave, y_wave, color="black", zorder=3, label="5 support points")
for steps in [1, 2, 3, 5]:
    wave = FewShotRegressor(pretrained=model, inner_steps=steps).fit(X_wave, y_wave)
    ax.plot(grid, wave.predict(grid), label=f"after {steps} step(s)")
ax.set_ylim(-1.5 * abs(amplitude[0]) - 1, 1.5 * abs(amplitude[0]) + 1)
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %%
# Error against adaptation steps, over many new waves
# ---------------------------------------------------
# Mean squared error on 100 evenly spaced points of each of 40 new waves,
# adapting from 5 and from 10 of them (the same support points for every
# number of steps).
n_waves = 40
steps_grid = [1, 2, 3, 4, 5]
X_eval, y_eval, g_eval = make_sinusoid_tasks(
    n_tasks=n_waves, n_samples_per_task=100, evenly_spaced=True, random_state=2
)
rng = np.random.default_rng(3)
fig, ax = plt.subplots(figsize=(6, 3.5))
for shots in [5, 10]:
    tasks = [np.flatnonzero(g_eval == task) for task in range(n_waves)]
    supports = [rng.choice(rows, shots, replace=False) for rows in tasks]
    mse = []
    for steps in steps_grid:
        wave = FewShotRegressor(pretrained=model, inner_steps=steps)
        errors = [
            np.mean(
                (wave.fit(X_eval[s], y_eval[s]).predict(X_eval[r]) - y_eval[r]) ** 2
            )
            for s, r in zip(supports, tasks, strict=True)
        ]
        mse.append(np.mean(errors))
    print(f"{shots} shots, MSE by inner_steps {steps_grid}: {np.round(mse, 3)}")
    ax.plot(steps_grid, mse, marker="o", label=f"{shots} shots")
ax.set_xticks(steps_grid)
ax.set_xlabel("inner_steps at test time")
ax.set_ylabel(f"MSE, mean over {n_waves} waves")
ax.legend()
plt.tight_layout()
plt.show()

# %%
# The best number of test-time steps grows with the number of points: more
# points support more steps before the adaptation overfits or overshoots. The
# benchmark chose 1 step for 5 shots and 2 for 10 and 20, on validation waves
# (``benchmarks/results/sinusoid.md``); choose it the same way, on tasks that
# are neither meta-training nor test tasks.
