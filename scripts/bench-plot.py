#!/usr/bin/env python3
"""Plots ack latency (p50, p99, p99.9) against offered rate for every system in results.json."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results_path: str, png_path: str) -> None:
    with open(results_path) as f:
        results = json.load(f)
    rates = results["rates"]
    if "intake" not in results.get("phases", ["intake"]):
        print("No intake phase in this run: nothing to plot")
        return
    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {
        "alert-responder": "tab:blue",
        "alert-responder (SQLite)": "tab:blue",
        "alert-responder (PostgreSQL, 1 replica)": "tab:green",
        "alert-responder (PostgreSQL, 2 replicas)": "tab:purple",
        "webhook": "tab:orange",
    }
    for system, figures in results["median"].items():
        for quantile, dash in (("p50", ":"), ("p99", "-"), ("p999", "--")):
            ys = [figures.get(f"ack_{r}_{quantile}_ms") for r in rates]
            label = f"{system} {quantile.replace('p999', 'p99.9')}"
            ax.plot(rates, ys, dash, marker="o", color=styles.get(system), label=label)
    ax.set_xlabel("offered rate (webhooks/s, open loop, 1 alert of ~1.5 KB each)")
    ax.set_ylabel("ack latency (ms, log scale)")
    ax.set_yscale("log")
    ax.set_xticks(rates)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(
        f"Ack latency vs rate (median of {results['runs']} run(s), {results['date'][:10]})"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
