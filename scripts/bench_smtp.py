# SPDX-License-Identifier: BSD-3-Clause
"""The SMTP table of scripts/bench (issues #5 and #8): mxgate against Postfix.

    bench_smtp.py report OUTDIR RUNS META-JSON

reads what scripts/bench left in OUTDIR -- per mxgate run NAME-R.json (the
generator's JSON line and the dataplane's /mxgate/stats before and after),
postfix-SCEN.json (smtp-source -> smtp-sink) and postfix-relay-SCEN.json
(smtp-source -> Postfix -> smtp-sink, scripts/bench_postfix.py) -- and prints
one table, a row per mxgate scenario from its median run, next to the Postfix
figure it is compared with:

    sink         vs smtp-sink          target x10
    store        vs the Postfix relay  target x50
    cut-through  vs the Postfix relay  target x100
    store and cut-through over STARTTLS vs the Postfix relay offering STARTTLS
                 (postfix-relay-tls-SCEN.json), the same targets

Cycles per message: mxgate, the dataplane worker's busy TSC cycles over the
messages it accepted; Postfix, the CPU time (utime+stime) of its server
processes in TSC cycles (at the TSC rate mxgate-gen reported). Writes
smtp.json and a chart, smtp.png (matplotlib), to OUTDIR.
"""

import json
import os
import sys

# name, label, Postfix figure (kind, scenario), target ratio
SCENARIOS = []
for mode, kind, target in (("sink", "smtp-sink", 10), ("store", "relay", 50),
                           ("cut", "relay", 100)):
    for size in ("1k", "64k"):
        for per in ("1", "100"):
            label = {"sink": "sink", "store": "store", "cut": "cut-through"}[mode]
            SCENARIOS.append((f"{mode}-{size}-{per}",
                              f"{label}, {'1 KiB' if size == '1k' else '64 KiB'}, {per}/conn",
                              kind, f"{size}-{per}", target))
# Over STARTTLS, a full handshake per connection, against the Postfix relay offering it
# (mxgate-gen --tls starttls its client too): the same targets as in the clear.
for mode, target in (("store", 50), ("cut", 100)):
    for per in ("1", "100"):
        label = {"store": "store", "cut": "cut-through"}[mode]
        SCENARIOS.append((f"{mode}-tls-1k-{per}", f"{label} + STARTTLS, 1 KiB, {per}/conn",
                          "relay-tls", f"1k-{per}", target))


def one_run(outdir, name, run):
    """The figures of one run, or None when it did not finish (scripts/bench noted why)."""
    try:
        with open(f"{outdir}/{name}-{run}.json") as f:
            r = json.load(f)
    except (OSError, ValueError):
        return None
    g, a, b = r["gen"], r["dp_before"], r["dp_after"]
    if not (g and a and b):
        return None
    d = {k: b["stats"][k] - a["stats"][k] for k in b["stats"]}
    secs = b["time"] - a["time"]
    msgs = d["smtp_messages_accepted"]
    busy = d["busy_cycles"]
    run_ns, wait_ns = b["run_ns"] - a["run_ns"], b["wait_ns"] - a["wait_ns"]
    relayed = d.get("relay_messages_delivered")
    return {
        "scenario": name, "run": run, "result": g["msgs_per_s"], "dp_messages": msgs,
        "dp_busy_cycles": busy, "dp_cycles_per_message": busy / msgs if msgs else None,
        "dp_busy_pct": 100.0 * busy / d["loop_cycles"] if d["loop_cycles"] else None,
        "dp_cpu_wait_pct": 100.0 * wait_ns / (run_ns + wait_ns) if run_ns + wait_ns else None,
        "dp_relayed": relayed, "dp_relayed_per_s": relayed / secs if relayed is not None and secs else None,
        "retries_4xx": g.get("retries_4xx", 0), "retries_lost": g.get("retries_lost", 0),
        "load_avg": a.get("load"), "gen": g,
    }


def postfix_figure(outdir, kind, scen, hz):
    path = {"smtp-sink": f"{outdir}/postfix-{scen}.json",
            "relay": f"{outdir}/postfix-relay-{scen}.json",
            "relay-tls": f"{outdir}/postfix-relay-tls-{scen}.json"}[kind]
    try:
        with open(path) as f:
            pf = json.load(f)
    except OSError:
        return None
    pf["server_cycles_per_message"] = pf["server_cpu_s"] * hz / pf["messages"] \
        if pf["messages"] else None
    pf["kind"] = kind
    return pf


def fmt(v, spec=",.0f", none="-"):
    return none if v is None else format(v, spec)


def report(outdir, runs, meta):
    rows, scen, failed = [], [], []
    try:
        with open(f"{outdir}/failures.txt") as f:
            failures = f.read().splitlines()
    except OSError:
        failures = []
    for name, label, kind, pf_scen, target in SCENARIOS:
        done = [one_run(outdir, name, i) for i in range(1, runs + 1)]
        all_runs = [r for r in done if r]
        lost = [f for f in failures if f.split(":")[0].rsplit("-", 1)[0] == name]
        if lost:
            failed.append({"scenario": name, "failures": lost})
        if not all_runs:
            if lost:
                rows.append([label, "did not finish"] + [""] * 14)
            continue
        by = sorted(all_runs, key=lambda x: x["result"])
        m = dict(by[(len(by) - 1) // 2])
        m["label"] = label
        m["runs"], m["result_min"], m["result_max"] = all_runs, by[0]["result"], by[-1]["result"]
        m["runs_failed"] = len(done) - len(all_runs)
        hz = m["gen"]["tsc_hz"]
        pf = postfix_figure(outdir, kind, pf_scen, hz)
        m["postfix"] = pf
        m["target_ratio"] = target
        cpm = m["dp_cycles_per_message"]
        ratio = m["result"] / pf["msgs_per_s"] if pf and pf["msgs_per_s"] else None
        cyc_ratio = pf["server_cycles_per_message"] / cpm if pf and cpm and \
            pf["server_cycles_per_message"] else None
        m["ratio_msgs_per_s"], m["ratio_cycles"] = ratio, cyc_ratio
        m["achieved_of_target"] = ratio / target if ratio else None
        scen.append(m)
        errors = sum(r["gen"]["errors"] for r in all_runs)
        retries = sum(r["retries_4xx"] + r["retries_lost"] for r in all_runs)
        rows.append([
            label + (f" ({m['runs_failed']} run(s) failed)" if m["runs_failed"] else ""),
            fmt(m["result"]), f"{fmt(m['result_min'])}-{fmt(m['result_max'])}",
            fmt(m["dp_relayed_per_s"]) if name.startswith("store") else "",  # store-tls too
            fmt(cpm), fmt(m["dp_busy_pct"], ".0f") + "%", f"{errors}/{retries}",
            fmt(m["load_avg"], ".1f"),
            f"{kind}" if pf else f"{kind}: not run",
            fmt(pf["msgs_per_s"]) if pf else "-",
            fmt(pf["server_cycles_per_message"]) if pf else "-",
            fmt(pf.get("load_avg"), ".1f") if pf else "-",
            f"x{ratio:,.1f}" if ratio else "-", f"x{target}",
            f"{100 * m['achieved_of_target']:.0f}%" if ratio else "-",
            f"x{cyc_ratio:,.1f}" if cyc_ratio else "-",
        ])
    head = ["scenario", f"mxgate msg/s (median of {runs})", "range", "relayed/s", "dp cyc/msg",
            "dp busy", "errors/retries", "load", "vs", "Postfix msg/s", "Postfix cyc/msg",
            "load", "msg/s ratio", "target", "of target", "cyc/msg ratio"]
    w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w[i]) if i in (0, 8) else c.rjust(w[i])
                               for i, c in enumerate(r))
    print()
    print(line(head))
    print("  ".join("-" * x for x in w))
    for r in rows:
        print(line(r))
    for f in failures:
        print(f"failed: {f}")
    meta["scenarios"] = scen
    meta["failures"] = failed
    with open(f"{outdir}/smtp.json", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    chart(outdir, scen, meta)


def chart(outdir, scen, meta):
    """Messages/s per scenario, mxgate beside its Postfix figure (log scale), to smtp.png."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: no matplotlib (python3-matplotlib): no chart", file=sys.stderr)
        return
    labels = [s["label"] for s in scen]
    mx = [s["result"] for s in scen]
    pf = [s["postfix"]["msgs_per_s"] if s["postfix"] else 0 for s in scen]
    x = range(len(scen))
    fig, ax = plt.subplots(figsize=(max(8, len(scen) * 1.1), 5.5))
    ax.bar([i - 0.2 for i in x], mx, 0.4, label="mxgate (1 core)", color="#2a6f97")
    ax.bar([i + 0.2 for i in x], pf, 0.4, label="Postfix: smtp-sink (sink rows), relay (others)",
           color="#c8553d")
    for i, s in enumerate(scen):
        if s["ratio_msgs_per_s"]:
            ax.annotate(f"x{s['ratio_msgs_per_s']:,.0f}\n(target x{s['target_ratio']})",
                        (i, max(mx[i], pf[i])), ha="center", va="bottom", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("messages/s (log)")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_title(f"mxgate vs Postfix, {meta.get('time', '')}, load average "
                 f"{meta.get('load_before', '?')} before the run", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{outdir}/smtp.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "report":
        sys.exit("usage: bench_smtp.py report OUTDIR RUNS META-JSON")
    report(sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]))
