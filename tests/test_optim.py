import pytest
from torch import nn

from ssync_lib.config import TrainConfig
from ssync_lib.optim import WarmupExpDecay, build_optimizer, build_scheduler


def _reference_factor(step, warmup, max_steps):
    """Method notes §1.8 written out: linear warm-up, then 0.5 ** ((step - warmup) / (max_steps - warmup))."""
    if step < warmup:
        return step / warmup
    return 0.5 ** ((step - warmup) / (max_steps - warmup))


def test_schedule_factor_matches_docs_method():
    fn = WarmupExpDecay(warmup_steps=2500, max_steps=100_000)
    for step in [0, 1, 1249, 2499, 2500, 2501, 51_250, 99_999, 100_000]:
        assert fn(step) == pytest.approx(_reference_factor(step, 2500, 100_000), rel=1e-12)
    assert fn(1250) == 0.5 and fn(2500) == 1.0 and fn(100_000) == 0.5
    assert WarmupExpDecay(0, 10)(0) == 1.0  # no warm-up: decay from the first step


def test_optimiser_lr_follows_the_schedule_step_by_step():
    tcfg = TrainConfig(lr=1e-3, warmup_steps=4, max_steps=20)
    model, objective = nn.Linear(2, 2), nn.Linear(1, 1)
    opt = build_optimizer(model, objective, tcfg)
    sched = build_scheduler(opt, tcfg, step=0)
    seen = []
    for _ in range(20):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for step, lrs in enumerate(seen):
        assert lrs == pytest.approx([1e-3 * _reference_factor(step, 4, 20)] * 2, rel=1e-12)
    # a scheduler built at step k (resume / branch) continues at the same lr
    later = build_scheduler(build_optimizer(model, objective, tcfg), tcfg, step=13)
    assert later.optimizer.param_groups[0]["lr"] == pytest.approx(seen[13][0], rel=1e-12)


def test_optimiser_groups_hold_trainable_parameters_only():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[0].requires_grad_(False)  # a frozen encoder
    opt = build_optimizer(model, nn.Identity(), TrainConfig())
    assert [len(g["params"]) for g in opt.param_groups] == [2, 0]
