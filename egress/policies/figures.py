"""Figures of a policy evaluation: savings with their intervals, savings against
realised compliance, maps of the change in speed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .. import units
from ..network import read_net
from .comparison import BASELINE, Outcome, Plan, Variant


def figures(out: Path, savings: pd.DataFrame, runs: pd.DataFrame, plans: list[Plan],
             results: dict[tuple, Outcome]) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    ev = savings[savings["group"] == "event"].copy()
    ev["label"] = ev["fraction"].map(lambda f: "all" if pd.isna(f) else f"{f:.0%}")
    scen_names = list(dict.fromkeys(ev["scenario"]))
    fig, axes = plt.subplots(len(scen_names), 1, figsize=(9, 3.6 * len(scen_names)),
                             squeeze=False)
    for ax, sname in zip(axes[:, 0], scen_names, strict=True):
        d = ev[ev["scenario"] == sname].reset_index(drop=True)
        x = np.arange(len(d))
        err = np.vstack([d["saving_min"] - d["ci_low"], d["ci_high"] - d["saving_min"]])
        err = np.nan_to_num(err)
        ax.bar(x, d["saving_min"], yerr=err, capsize=3, color="tab:blue", alpha=0.8)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, [f"{p}\n{lab}" for p, lab in zip(d["policy"], d["label"],
                                                          strict=True)],
                      fontsize=7)
        ax.set_ylabel("min saved per event vehicle")
        ax.set_title(f"{sname}: savings with 95% CI")
    fig.tight_layout()
    paths.append(out / "savings.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    comp = runs[(runs["group"] == "event") & runs["fraction"].notna()]
    if len(comp):
        fig, axes = plt.subplots(1, len(scen_names), figsize=(5 * len(scen_names), 3.8),
                                 squeeze=False)
        for ax, sname in zip(axes[0], scen_names, strict=True):
            for pname, g in comp[comp["scenario"] == sname].groupby("policy", sort=False):
                agg = g.groupby("fraction").agg(c=("realised_compliance", "mean"))
                s = ev[(ev["scenario"] == sname) & (ev["policy"] == pname)].set_index("fraction")
                s = s.loc[agg.index]
                err = np.nan_to_num(np.vstack([s["saving_min"] - s["ci_low"],
                                               s["ci_high"] - s["saving_min"]]))
                ax.errorbar(agg["c"].fillna(pd.Series(agg.index, index=agg.index)),
                            s["saving_min"], yerr=err, marker="o", capsize=3, label=pname)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xlabel("realised compliance (share of eligible vehicles)")
            ax.set_ylabel("min saved per event vehicle")
            ax.set_title(sname)
            ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / "savings_vs_compliance.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    for plan in plans:
        paths += _speed_maps(out, plan, results, plt)
    return paths


def _speed_maps(out: Path, plan: Plan, results: dict[tuple, Outcome], plt) -> list[Path]:
    from matplotlib.collections import LineCollection

    scen = plan.scen
    net = read_net(scen.network)

    def mean_speed(policy: str, fraction: float | None, ks: Iterable[int]) -> pd.Series | None:
        got = [results.get((scen.name, policy, fraction, k)) for k in ks]
        speeds = [o.speed for o in got if o is not None and o.valid and o.speed is not None]
        return pd.concat(speeds, axis=1).mean(axis=1) if speeds else None

    by_policy: dict[str, Variant] = {}
    for v in plan.variants:
        cur = by_policy.get(v.name)
        if cur is None or (v.fraction is not None
                           and abs(v.fraction - 0.3) < abs((cur.fraction or 9) - 0.3)):
            by_policy[v.name] = v
    shapes = {e.getID(): np.asarray(e.getShape())[:, :2] for e in net.getEdges()}
    paths = []
    for name, v in by_policy.items():
        ks = plan.ran[v.key]
        base = mean_speed(BASELINE, None, ks)
        pol = mean_speed(v.name, v.fraction, ks)
        if base is None or pol is None:
            continue
        delta = (pol.reindex(base.index) - base).dropna() * 3.6
        fig, ax = plt.subplots(figsize=(7, 7))
        grey = [shapes[e] for e in shapes if e not in delta.index]
        ax.add_collection(LineCollection(grey, colors="0.85", linewidths=0.5))
        segs = [shapes[e] for e in delta.index if e in shapes]
        vals = [delta[e] for e in delta.index if e in shapes]
        lim = max(1.0, float(np.nanmax(np.abs(vals))) if vals else 1.0)
        lc = LineCollection(segs, array=np.asarray(vals), cmap="RdBu", linewidths=1.6)
        lc.set_clim(-lim, lim)
        ax.add_collection(lc)
        ax.autoscale()
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(lc, ax=ax, shrink=0.7, label="change in mean speed (km/h)")
        tag = "all vehicles" if v.fraction is None else f"{v.fraction:.0%} compliance"
        sim = scen.simulation
        ax.set_title(f"{scen.name}: {name} ({tag}) − baseline\nmean over the whole window "
                     f"{units.window(sim.begin, sim.end)}; per 15 min: gis/ layers and report")
        fig.tight_layout()
        paths.append(out / f"speed_change_{scen.name}_{name}.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths



__all__ = ["figures"]
