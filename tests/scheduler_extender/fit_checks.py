"""Counting the fit checks an evaluation runs, for tests of what is computed again and what is kept."""

from __future__ import annotations

from scheduler_extender import evaluation as evaluation_module


def counting_checks(monkeypatch, *, plans: bool = True) -> list[int | str]:
    """What each fit check was asked: the number of candidates of a ``batch_fit`` and, with
    ``plans``, the node of a ``plan_on_node``."""
    calls: list[int | str] = []
    batch, plan = evaluation_module.batch_fit, evaluation_module.plan_on_node

    def counted_batch(requirements, rows, *args, **kwargs):
        calls.append(len(rows))
        return batch(requirements, rows, *args, **kwargs)

    def counted_plan(requirements, node, *args, **kwargs):
        calls.append(node)
        return plan(requirements, node, *args, **kwargs)

    monkeypatch.setattr(evaluation_module, "batch_fit", counted_batch)
    if plans:
        monkeypatch.setattr(evaluation_module, "plan_on_node", counted_plan)
    return calls


def counting_evaluations(scheduler, monkeypatch) -> list[int]:
    """The number of candidates of each evaluation the scheduler runs (a cycle read is none)."""
    calls: list[int] = []
    evaluate = scheduler._evaluate

    def counted(pod, requirements, names, *args):
        calls.append(len(names))
        return evaluate(pod, requirements, names, *args)

    monkeypatch.setattr(scheduler, "_evaluate", counted)
    return calls
